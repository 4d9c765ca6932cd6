// `npm install` / `npm ci`: generates the Prisma client into src/store/generated.
// A production install (`npm ci --omit=dev --omit=optional`) has no Prisma CLI and needs none: the compiled
// client is already in dist/store/generated (`npm run build` ran before, with dev dependencies).
import { spawnSync } from 'node:child_process';
import { existsSync } from 'node:fs';
import { createRequire } from 'node:module';
import process from 'node:process';

const require = createRequire(import.meta.url);
if (!existsSync('prisma/schema.prisma')) {
  process.stdout.write('keyward: no prisma/schema.prisma (a deployment tree); skipping prisma generate, dist/ carries the client\n');
  process.exit(0);
}
try {
  require.resolve('prisma/package.json');
} catch {
  process.stdout.write('keyward: no Prisma CLI (production install); skipping prisma generate, dist/ carries the client\n');
  process.exit(0);
}
const result = spawnSync('npm', ['run', 'generate'], { stdio: 'inherit' });
if (result.status === 0) spawnSync(process.execPath, ['scripts/pglite-template.mjs'], { stdio: 'inherit' });
process.exit(result.status ?? 1);
