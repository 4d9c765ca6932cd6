/**
 * Production smoke test (CI): the compiled runtime serves with production dependencies only.
 *
 *   npm run smoke:prod             build, then a production tree from the local node_modules
 *   npm run smoke:prod -- --npm-ci build, then `npm ci --omit=dev --omit=optional` from the
 *                                  registry (what the Dockerfile's runtime stage does)
 *
 * Steps: `npm run build`; a temporary directory with dist/, prisma/migrations, package.json and
 * the lockfile; its node_modules holds only the production dependency tree (no tsx, no
 * TypeScript, no Prisma CLI, checked); `node dist/main.js` started there on PGlite with a fresh
 * data dir; discovery and JWKS fetched; SIGTERM; the process must exit 0. Exit 1 on any failure.
 */
import { execFileSync, spawn } from 'node:child_process';
import { once } from 'node:events';
import { cp, link, mkdir, mkdtemp, readdir, readFile, realpath, rm, stat } from 'node:fs/promises';
import { createServer } from 'node:net';
import { tmpdir } from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';

const ROOT = fileURLToPath(new URL('..', import.meta.url));
const NODE_MODULES = path.join(ROOT, 'node_modules');
const DEV_ONLY = ['tsx', 'typescript', 'prisma', '@prisma/schema-engine-wasm', 'eslint'];
const args = new Set(process.argv.slice(2));

function step(message: string): void {
  process.stdout.write(`prod-smoke: ${message}\n`);
}

async function freePort(): Promise<number> {
  const server = createServer().listen(0, '127.0.0.1');
  await once(server, 'listening');
  const { port } = server.address() as { port: number };
  server.close();
  await once(server, 'close');
  return port;
}

/** Hard links (copies across file systems): the tree is what `node` resolves, not a symlink back. */
async function linkTree(from: string, to: string, top = false): Promise<void> {
  await mkdir(to, { recursive: true });
  for (const entry of await readdir(from, { withFileTypes: true })) {
    // A package's own node_modules: its entries are in the lockfile, each judged on its own.
    if (top && entry.name === 'node_modules') continue;
    const a = path.join(from, entry.name);
    const b = path.join(to, entry.name);
    if (entry.isDirectory()) await linkTree(a, b);
    else if (entry.isSymbolicLink()) await cp(a, b, { verbatimSymlinks: true });
    else await link(a, b).catch(() => cp(a, b));
  }
}

/**
 * What `npm ci --omit=dev --omit=optional` installs, read from the lockfile (entries neither
 * `dev`, `optional` nor `devOptional`), hard-linked from the local node_modules.
 */
async function productionTree(target: string): Promise<void> {
  const lock = JSON.parse(await readFile(path.join(ROOT, 'package-lock.json'), 'utf8')) as {
    packages: Record<string, { dev?: boolean; optional?: boolean; devOptional?: boolean; link?: boolean }>;
  };
  const real = await realpath(NODE_MODULES);
  let count = 0;
  for (const [entry, meta] of Object.entries(lock.packages)) {
    if (!entry.startsWith('node_modules/') || meta.dev || meta.optional || meta.devOptional) continue;
    await linkTree(path.join(real, entry.slice('node_modules/'.length)), path.join(target, entry), true);
    count += 1;
  }
  step(`production tree from package-lock.json: ${count} packages`);
}

async function exists(p: string): Promise<boolean> {
  return stat(p).then(() => true, () => false);
}

async function main(): Promise<void> {
  if (!args.has('--no-build')) {
    step('npm run build');
    execFileSync('npm', ['run', 'build'], { cwd: ROOT, stdio: 'inherit' });
  }
  const dir = await mkdtemp(path.join(tmpdir(), 'keyward-prod-'));
  let child: ReturnType<typeof spawn> | undefined;
  try {
    await cp(path.join(ROOT, 'dist'), path.join(dir, 'dist'), { recursive: true });
    await cp(path.join(ROOT, 'prisma', 'migrations'), path.join(dir, 'prisma', 'migrations'), { recursive: true });
    for (const file of ['package.json', 'package-lock.json', 'scripts/postinstall.mjs']) {
      await cp(path.join(ROOT, file), path.join(dir, file));
    }
    if (args.has('--npm-ci')) {
      step('npm ci --omit=dev --omit=optional');
      execFileSync('npm', ['ci', '--omit=dev', '--omit=optional', '--no-audit', '--no-fund'], { cwd: dir, stdio: 'inherit' });
    } else {
      await productionTree(dir);
    }
    for (const name of DEV_ONLY) {
      if (await exists(path.join(dir, 'node_modules', name))) throw new Error(`development package ${name} is in the production tree`);
    }
    step(`no ${DEV_ONLY.join(', ')} in node_modules`);

    const port = await freePort();
    const issuer = `http://127.0.0.1:${port}`;
    const env: NodeJS.ProcessEnv = {
      PATH: process.env.PATH, HOME: dir, NODE_ENV: 'production', PORT: String(port), HOST: '127.0.0.1', ISSUER: issuer,
      KEYWARD_DATA_DIR: path.join(dir, 'data'), KEYWARD_KEK_FILE: path.join(dir, 'keys', 'kek'), LOG_LEVEL: 'info',
    };
    const started = Date.now();
    child = spawn(process.execPath, ['dist/main.js'], { cwd: dir, env, stdio: ['ignore', 'pipe', 'pipe'] });
    let output = '';
    child.stdout!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    child.stderr!.on('data', (chunk: Buffer) => { output += chunk.toString(); });
    const exited = once(child, 'exit');
    let discovery: { issuer?: string; jwks_uri?: string } | undefined;
    while (Date.now() - started < 180_000 && child.exitCode === null) {
      const res = await fetch(`${issuer}/.well-known/openid-configuration`).catch(() => undefined);
      if (res?.ok) {
        discovery = (await res.json()) as typeof discovery;
        break;
      }
      await new Promise((r) => setTimeout(r, 250));
    }
    if (!discovery) throw new Error(`dist/main.js did not serve discovery:\n${output}`);
    if (discovery.issuer !== issuer) throw new Error(`discovery issuer ${discovery.issuer} != ${issuer}`);
    step(`node dist/main.js served discovery after ${Date.now() - started} ms (PGlite, fresh data dir)`);
    const jwks = (await (await fetch(discovery.jwks_uri!)).json()) as { keys?: unknown[] };
    if (!jwks.keys?.length) throw new Error('JWKS is empty');
    step(`JWKS: ${jwks.keys.length} key(s)`);
    child.kill('SIGTERM');
    const [code] = (await exited) as [number | null];
    if (code !== 0) throw new Error(`exit code ${code} after SIGTERM:\n${output}`);
    child = undefined;
    step('SIGTERM: exit 0. OK');
  } finally {
    if (child && child.exitCode === null) child.kill('SIGKILL');
    await rm(dir, { recursive: true, force: true });
  }
}

main().catch((error: Error) => {
  process.stderr.write(`prod-smoke: FAILED: ${error.message}\n`);
  process.exit(1);
});
