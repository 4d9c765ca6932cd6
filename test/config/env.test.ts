import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { chmodSync, mkdtempSync, writeFileSync } from 'node:fs';
import os from 'node:os';
import path from 'node:path';
import { fileURLToPath } from 'node:url';
import { describe, test } from 'node:test';
import { ConfigError, FILE_VARIABLES, loadConfig } from '../../src/config/env.ts';
import { parseDuration } from '../../src/config/duration.ts';

const KEK = Buffer.alloc(32, 1).toString('base64');
const ROOT = path.resolve(path.dirname(fileURLToPath(import.meta.url)), '../..');

/** Asserts that `env` is rejected with a one-line ConfigError naming `variable`. */
function assertRejected(env: Record<string, string>, variable: string, expectedForm: RegExp): void {
  assert.throws(() => loadConfig(env), (error: unknown) => {
    assert.ok(error instanceof ConfigError, `a ConfigError, got ${String(error)}`);
    assert.match(error.message, new RegExp(`^invalid ${variable}: `));
    assert.match(error.message, expectedForm);
    assert.doesNotMatch(error.message, /\n/);
    return true;
  });
}

describe('loadConfig', () => {
  test('rate limits: on by default with the documented rates, off with KEYWARD_RATE_LIMIT=off, a bad rate names the variable', () => {
    assert.deepEqual(loadConfig({}).rateLimits, {
      token: { points: 6000, durationMs: 60_000 }, login: { points: 300, durationMs: 60_000 }, device: { points: 120, durationMs: 60_000 },
    });
    assert.deepEqual(loadConfig({ KEYWARD_RATE_LIMIT_TOKEN: '50/1s' }).rateLimits?.token, { points: 50, durationMs: 1_000 });
    assert.equal(loadConfig({ KEYWARD_RATE_LIMIT: 'off' }).rateLimits, undefined);
    assertRejected({ KEYWARD_RATE_LIMIT_LOGIN: '10 per minute' }, 'KEYWARD_RATE_LIMIT_LOGIN', /<requests>\/<duration>/);
    assertRejected({ KEYWARD_RATE_LIMIT: 'maybe' }, 'KEYWARD_RATE_LIMIT', /on|off/);
    assert.equal(loadConfig({}).auditBufferMax, 50_000);
    assertRejected({ KEYWARD_AUDIT_BUFFER_MAX: '10' }, 'KEYWARD_AUDIT_BUFFER_MAX', /100/);
    assert.equal(loadConfig({}).auditLogLevel, 'debug');
    assert.equal(loadConfig({ KEYWARD_AUDIT_LOG: 'info' }).auditLogLevel, 'info');
    assertRejected({ KEYWARD_AUDIT_LOG: 'warn' }, 'KEYWARD_AUDIT_LOG', /debug|info/);
  });

  test('an empty environment gives the documented defaults', () => {
    const config = loadConfig({});
    assert.equal(config.port, 3000);
    assert.equal(config.host, '0.0.0.0');
    assert.equal(config.issuer, 'http://localhost:3000');
    assert.equal(config.databaseUrl, undefined);
    assert.equal(config.dataDir, './data');
    assert.equal(config.kek, undefined);
    assert.equal(config.kekFile, './keys/kek');
    assert.equal(config.autoMigrate, true);
    assert.deepEqual(config.bootstrapAdmin, { clientId: undefined, clientSecret: undefined });
    assert.equal(config.keyRotationIntervalMs, 30 * 86_400_000);
    assert.equal(config.shutdownTimeoutMs, 10_000);
    assert.equal(config.logLevel, 'info');
  });

  test('the issuer defaults to http://localhost:$PORT', () => {
    assert.equal(loadConfig({ PORT: '8080' }).issuer, 'http://localhost:8080');
  });

  test('an explicit ISSUER wins and loses a trailing slash', () => {
    assert.equal(loadConfig({ PORT: '8080', ISSUER: 'https://id.example.com/' }).issuer, 'https://id.example.com');
  });

  test('empty variables count as unset', () => {
    assert.equal(loadConfig({ DATABASE_URL: '', PORT: '' }).databaseUrl, undefined);
  });

  test('DATABASE_URL, KEYWARD_KEK and the bootstrap pair are taken as given', () => {
    const config = loadConfig({
      DATABASE_URL: 'postgres://keyward:pw@db:5432/keyward',
      KEYWARD_KEK: KEK,
      KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: 'admin-cli',
      KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: 's'.repeat(40),
      KEYWARD_AUTO_MIGRATE: 'false',
      LOG_LEVEL: 'debug',
    });
    assert.equal(config.databaseUrl, 'postgres://keyward:pw@db:5432/keyward');
    assert.deepEqual(config.kek, Buffer.alloc(32, 1));
    assert.deepEqual(config.bootstrapAdmin, { clientId: 'admin-cli', clientSecret: 's'.repeat(40) });
    assert.equal(config.autoMigrate, false);
    assert.equal(config.logLevel, 'debug');
  });

  test('durations 90s, 15m, 12h and 30d', () => {
    assert.equal(loadConfig({ KEYWARD_KEY_ROTATION_INTERVAL: '90s' }).keyRotationIntervalMs, 90_000);
    assert.equal(loadConfig({ KEYWARD_KEY_ROTATION_INTERVAL: '15m' }).keyRotationIntervalMs, 900_000);
    assert.equal(loadConfig({ KEYWARD_KEY_ROTATION_INTERVAL: '12h' }).keyRotationIntervalMs, 43_200_000);
    assert.equal(loadConfig({ KEYWARD_KEY_ROTATION_INTERVAL: '30d' }).keyRotationIntervalMs, 2_592_000_000);
    assert.equal(parseDuration('0s'), undefined);
    assert.equal(parseDuration('1.5h'), undefined);
  });
});

describe('secrets from files (X_FILE, as Docker/Kubernetes secrets, Vault Agent and the CSI driver mount them)', () => {
  const dir = mkdtempSync(path.join(os.tmpdir(), 'keyward-env-'));
  const file = (name: string, content: string): string => {
    const at = path.join(dir, name);
    writeFileSync(at, content, { mode: 0o600 });
    return at;
  };
  const PREVIOUS = Buffer.alloc(32, 2).toString('base64');

  test('every secret-bearing variable is read from its _FILE, one trailing newline dropped', () => {
    assert.deepEqual([...FILE_VARIABLES].sort(), ['DATABASE_URL', 'KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET', 'KEYWARD_KEK_PREVIOUS', 'KEYWARD_METRICS_TOKEN']);
    const config = loadConfig({
      DATABASE_URL_FILE: file('db', 'postgres://keyward:s3cret@db:5432/keyward\n'),
      KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: 'admin-cli',
      KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET_FILE: file('admin', `${'a'.repeat(40)}\r\n`),
      KEYWARD_METRICS_TOKEN_FILE: file('metrics', 'm'.repeat(20)),
      KEYWARD_KEK_PREVIOUS_FILE: file('kek-previous', `${PREVIOUS}\n`),
    });
    assert.equal(config.databaseUrl, 'postgres://keyward:s3cret@db:5432/keyward');
    assert.deepEqual(config.bootstrapAdmin, { clientId: 'admin-cli', clientSecret: 'a'.repeat(40) });
    assert.equal(config.metricsToken, 'm'.repeat(20));
    assert.deepEqual(config.kekPrevious, Buffer.alloc(32, 2));
    assert.equal(config.kekNames.previous, 'KEYWARD_KEK_PREVIOUS_FILE');
  });

  test('KEYWARD_KEK_PREVIOUS from the environment, and the KEK names used in errors', () => {
    const config = loadConfig({ KEYWARD_KEK: KEK, KEYWARD_KEK_PREVIOUS: PREVIOUS });
    assert.deepEqual(config.kekPrevious, Buffer.alloc(32, 2));
    assert.deepEqual(config.kekNames, { current: 'KEYWARD_KEK', previous: 'KEYWARD_KEK_PREVIOUS' });
    assert.equal(loadConfig({}).kekNames.current, 'KEYWARD_KEK_FILE (./keys/kek)');
    assertRejected({ KEYWARD_KEK_PREVIOUS: 'c2hvcnQ=' }, 'KEYWARD_KEK_PREVIOUS', /32 random bytes in base64/);
  });

  test('setting both X and X_FILE is an error naming X_FILE', () => {
    for (const variable of FILE_VARIABLES) {
      assertRejected({ [variable]: 'x', [`${variable}_FILE`]: file('both', 'x') }, `${variable}_FILE`, new RegExp(`set either ${variable} or ${variable}_FILE, not both`));
    }
  });

  test('a missing or unreadable file is one line naming X_FILE and the path', () => {
    assertRejected({ DATABASE_URL_FILE: path.join(dir, 'nope') }, 'DATABASE_URL_FILE', /cannot read .*nope \(ENOENT\)$/);
    assertRejected({ KEYWARD_METRICS_TOKEN_FILE: dir }, 'KEYWARD_METRICS_TOKEN_FILE', /cannot read .* \(EISDIR\)$/);
    if (process.getuid?.() !== 0) {
      const locked = file('locked', 'm'.repeat(20));
      chmodSync(locked, 0o000);
      assertRejected({ KEYWARD_METRICS_TOKEN_FILE: locked }, 'KEYWARD_METRICS_TOKEN_FILE', /cannot read .*locked \(EACCES\)$/);
    }
  });

  test('malformed content is reported against X_FILE with the expected form, never echoed', () => {
    const secret = 'postgres//not-a-url-s3cret';
    assertRejected({ DATABASE_URL_FILE: file('bad-db', `${secret}\n`) }, 'DATABASE_URL_FILE', /expected postgres:\/\//);
    assert.throws(() => loadConfig({ DATABASE_URL_FILE: file('bad-db', secret) }), (error: Error) => !error.message.includes(secret));
    assertRejected({ KEYWARD_KEK_PREVIOUS_FILE: file('short-kek', 'c2hvcnQ=\n') }, 'KEYWARD_KEK_PREVIOUS_FILE', /32 random bytes in base64/);
    assertRejected({ KEYWARD_METRICS_TOKEN_FILE: file('short', 'short\n') }, 'KEYWARD_METRICS_TOKEN_FILE', /at least 16 characters/);
    assertRejected({ KEYWARD_METRICS_TOKEN_FILE: file('empty', '\n') }, 'KEYWARD_METRICS_TOKEN_FILE', /is empty$/);
    assertRejected({ KEYWARD_METRICS_TOKEN_FILE: file('two-lines', `${'m'.repeat(20)}\n${'n'.repeat(20)}\n`) }, 'KEYWARD_METRICS_TOKEN_FILE', /more than one line$/);
  });

  test('KEYWARD_KEK_FILE keeps its meaning (a file created on first start), not a _FILE variant of KEYWARD_KEK', () => {
    const config = loadConfig({ KEYWARD_KEK: KEK, KEYWARD_KEK_FILE: path.join(dir, 'does-not-exist-yet') });
    assert.deepEqual(config.kek, Buffer.alloc(32, 1));
    assert.equal(config.kekFile, path.join(dir, 'does-not-exist-yet'));
  });
});

describe('database timeouts and cache staleness (issue 11: fail fast, bounded staleness)', () => {
  test('defaults: connect 2 s, statement 5 s, pool 10, cache staleness 5 minutes', () => {
    const config = loadConfig({});
    assert.deepEqual(config.db, { connectTimeoutMs: 2_000, statementTimeoutMs: 5_000, poolSize: 10 });
    assert.equal(config.cacheMaxStalenessMs, 300_000);
  });

  test('each is configurable; a malformed one is named', () => {
    const config = loadConfig({ KEYWARD_DB_CONNECT_TIMEOUT: '1s', KEYWARD_DB_STATEMENT_TIMEOUT: '30s', KEYWARD_DB_POOL_SIZE: '4', KEYWARD_CACHE_MAX_STALENESS: '90s' });
    assert.deepEqual(config.db, { connectTimeoutMs: 1_000, statementTimeoutMs: 30_000, poolSize: 4 });
    assert.equal(config.cacheMaxStalenessMs, 90_000);
    assert.equal(loadConfig({}).clientCacheSize, 50_000);
    assert.equal(loadConfig({ KEYWARD_CLIENT_CACHE_SIZE: '200000' }).clientCacheSize, 200_000);
    assertRejected({ KEYWARD_CLIENT_CACHE_SIZE: '10' }, 'KEYWARD_CLIENT_CACHE_SIZE', /100/);
    assertRejected({ KEYWARD_CACHE_MAX_STALENESS: 'forever' }, 'KEYWARD_CACHE_MAX_STALENESS', /duration/);
    assertRejected({ KEYWARD_DB_CONNECT_TIMEOUT: '2000' }, 'KEYWARD_DB_CONNECT_TIMEOUT', /duration/);
  });
});

describe('a bad value is named with its expected form', () => {
  test('malformed DATABASE_URL', () => {
    assertRejected({ DATABASE_URL: 'not a url' }, 'DATABASE_URL', /postgres:\/\//);
    assertRejected({ DATABASE_URL: 'mysql://u@h/db' }, 'DATABASE_URL', /postgres:\/\//);
  });

  test('KEYWARD_KEK that is not 32 bytes of base64', () => {
    assertRejected({ KEYWARD_KEK: Buffer.alloc(16, 1).toString('base64') }, 'KEYWARD_KEK', /32 random bytes in base64/);
    assertRejected({ KEYWARD_KEK: '!'.repeat(44) }, 'KEYWARD_KEK', /32 random bytes in base64/);
  });

  test('a KEYWARD_KEK error does not echo the key', () => {
    const almost = `${KEK.slice(0, 42)}`;
    assert.throws(() => loadConfig({ KEYWARD_KEK: almost }), (error: Error) => !error.message.includes(almost));
  });

  test('non-URL ISSUER', () => {
    assertRejected({ ISSUER: 'id.example.com' }, 'ISSUER', /absolute http\(s\) URL/);
    assertRejected({ ISSUER: 'https://id.example.com/?x=1' }, 'ISSUER', /without query or fragment/);
  });

  test('unknown duration "5 weeks"', () => {
    assertRejected({ KEYWARD_KEY_ROTATION_INTERVAL: '5 weeks' }, 'KEYWARD_KEY_ROTATION_INTERVAL', /90s, 15m, 12h or 30d/);
  });

  test('bootstrap client id without a secret', () => {
    assertRejected({ KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: 'admin-cli' }, 'KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET', /set both/);
  });

  test('PORT out of range', () => {
    assertRejected({ PORT: '70000' }, 'PORT', /65535/);
  });
});

interface Exit {
  code: number | null;
  stderr: string;
  stdout: string;
  ms: number;
}

/** Runs the real entry point with exactly `env` (plus PATH) and waits for it to exit. */
function runMain(env: Record<string, string>, timeoutMs = 10_000): Promise<Exit> {
  const started = Date.now();
  const child = spawn(process.execPath, ['--import', 'tsx', 'src/main.ts'], {
    cwd: ROOT,
    env: { PATH: process.env.PATH ?? '', HOME: process.env.HOME ?? '', ...env },
    stdio: ['ignore', 'pipe', 'pipe'],
  });
  let stdout = '';
  let stderr = '';
  child.stdout.on('data', (chunk: Buffer) => (stdout += chunk.toString()));
  child.stderr.on('data', (chunk: Buffer) => (stderr += chunk.toString()));
  return new Promise((resolve, reject) => {
    const timer = setTimeout(() => {
      child.kill('SIGKILL');
      reject(new Error(`still running after ${timeoutMs} ms; stderr: ${stderr}`));
    }, timeoutMs);
    child.on('exit', (code) => {
      clearTimeout(timer);
      resolve({ code, stderr, stdout, ms: Date.now() - started });
    });
  });
}

describe('start-up with a bad value (process level)', () => {
  const cases: [string, Record<string, string>][] = [
    ['DATABASE_URL', { DATABASE_URL: 'postgres//nohost' }],
    ['KEYWARD_KEK', { KEYWARD_KEK: 'c2hvcnQ=' }],
    ['ISSUER', { ISSUER: 'not-a-url' }],
    ['DATABASE_URL_FILE', { DATABASE_URL_FILE: '/nonexistent/keyward-db-url' }],
    ['KEYWARD_KEY_ROTATION_INTERVAL', { KEYWARD_KEY_ROTATION_INTERVAL: '5 weeks' }],
  ];
  for (const [variable, env] of cases) {
    test(`bad ${variable}: exits non-zero within seconds with one line on stderr naming it`, async () => {
      const exit = await runMain(env);
      assert.notEqual(exit.code, 0);
      assert.ok(exit.ms < 8000, `exited after ${exit.ms} ms`);
      const lines = exit.stderr.split('\n').filter(Boolean);
      assert.equal(lines.length, 1, `exactly one line on stderr, got: ${exit.stderr}`);
      assert.match(lines[0]!, new RegExp(`\\binvalid ${variable}: (expected|cannot read) `));
      assert.equal(exit.stdout, '');
    });
  }
});
