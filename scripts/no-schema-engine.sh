#!/bin/sh
# Stand-in for Prisma's native schema engine, which the CLI would otherwise download
# from binaries.prisma.sh (outside the npm registry). generate/validate/format never need
# it; migrations are applied by src/store/migrate.ts and authored by scripts/migration-new.ts.
if [ "$1" = "--version" ]; then echo "schema-engine-unavailable 0.0.0"; exit 0; fi
echo "keyward: the native Prisma schema engine is not installed (offline build)." >&2
echo "keyward: use 'npm run migrate', 'npm run migrate:new' and 'npm run migrate:status' instead." >&2
exit 1
