# Keyward: one image, stateless; state lives in PostgreSQL (or ./data for PGlite).
# Stage 1 compiles src/ to dist/ (with dev dependencies: TypeScript, the Prisma CLI for
# `prisma generate`); stage 2 installs production dependencies only; the image runs
# `node dist/main.js`, no TypeScript compiler or loader at runtime.
FROM node:22-bookworm-slim AS build
WORKDIR /app
# argon2 falls back to compiling from source when no prebuilt binary fits.
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json prisma.config.ts tsconfig.json tsconfig.build.json ./
COPY prisma ./prisma
COPY scripts ./scripts
RUN npm ci --no-audit --no-fund
COPY src ./src
RUN npm run build

FROM node:22-bookworm-slim AS deps
WORKDIR /app
RUN apt-get update && apt-get install -y --no-install-recommends python3 make g++ && rm -rf /var/lib/apt/lists/*
COPY package.json package-lock.json ./
COPY scripts/postinstall.mjs ./scripts/
# --omit=optional as well: npm keeps the Prisma CLI and TypeScript (optional peers of
# @prisma/client) under --omit=dev alone.
RUN npm ci --omit=dev --omit=optional --no-audit --no-fund

FROM node:22-bookworm-slim
ENV NODE_ENV=production PORT=3000
WORKDIR /app
COPY --from=deps /app/node_modules ./node_modules
COPY package.json ./
COPY prisma/migrations ./prisma/migrations
COPY --from=build /app/dist ./dist
RUN mkdir -p keys data && chown -R node:node keys data
USER node
EXPOSE 3000
HEALTHCHECK --interval=10s --timeout=3s --retries=5 CMD node -e "fetch('http://127.0.0.1:'+(process.env.PORT||3000)+'/readyz').then(r=>process.exit(r.ok?0:1),()=>process.exit(1))"
# Operator commands: docker run … node dist/cli/main.js migrate status (or any other CLI command).
CMD ["node", "dist/main.js"]
