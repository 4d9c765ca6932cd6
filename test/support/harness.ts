import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { mkdtemp, rm } from 'node:fs/promises';
import os from 'node:os';
import path from 'node:path';
import pg from 'pg';
import { pino } from 'pino';
import { Writable } from 'node:stream';
import { createKeyward, type Keyward, type KeywardOptions } from '../../src/app.ts';
import { loadConfig, type Config } from '../../src/config/env.ts';
import { createLogger, type Logger } from '../../src/log/logger.ts';
import { openStore, type Store } from '../../src/store/store.ts';
import { onFreshPort } from './net.ts';

/**
 * Test stores: a fresh PostgreSQL database per call when DATABASE_URL is set (created from
 * and dropped through that server), otherwise a fresh in-memory PGlite.
 */
export interface TestDatabase {
  kind: 'postgres' | 'pglite';
  /** Connection string of the fresh database (postgres only). */
  url: string | undefined;
  /** Directory for PGlite data and KEK files; removed by drop(). */
  dir: string;
  drop(): Promise<void>;
}

export async function createTestDatabase(): Promise<TestDatabase> {
  const dir = await mkdtemp(path.join(os.tmpdir(), 'keyward-test-'));
  const base = process.env.DATABASE_URL;
  if (!base) {
    return { kind: 'pglite', url: undefined, dir, drop: () => rm(dir, { recursive: true, force: true }) };
  }
  const name = `keyward_t_${randomBytes(6).toString('hex')}`;
  const admin = new pg.Client({ connectionString: base });
  await admin.connect();
  await admin.query(`CREATE DATABASE ${name}`);
  await admin.end();
  const url = new URL(base);
  url.pathname = `/${name}`;
  return {
    kind: 'postgres',
    url: url.toString(),
    dir,
    async drop() {
      const c = new pg.Client({ connectionString: base });
      await c.connect();
      await c.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`);
      await c.end();
      await rm(dir, { recursive: true, force: true });
    },
  };
}

/** A fixed KEK for tests (base64 of 32 bytes). */
export const TEST_KEK = Buffer.alloc(32, 7).toString('base64');

/** Config for a test instance on `db`; `env` overrides any variable. */
export function testConfig(db: TestDatabase, env: Record<string, string> = {}): Config {
  return loadConfig({
    PORT: '0',
    HOST: '127.0.0.1',
    LOG_LEVEL: 'silent',
    KEYWARD_KEK: TEST_KEK,
    KEYWARD_KEK_FILE: path.join(db.dir, 'kek'),
    KEYWARD_DATA_DIR: db.kind === 'pglite' ? path.join(db.dir, 'pgdata') : path.join(db.dir, 'unused'),
    ...(db.url ? { DATABASE_URL: db.url } : {}),
    ...env,
  });
}

/** Log lines captured in memory, to assert that no secret ever reaches a log. */
export class CapturedLogs {
  readonly lines: string[] = [];
  readonly logger: Logger;
  constructor(level = 'debug') {
    const sink = new Writable({
      write: (chunk: Buffer, _enc, done) => {
        this.lines.push(...chunk.toString('utf8').split('\n').filter(Boolean));
        done();
      },
    });
    this.logger = createLogger(level, sink);
  }
  get text(): string {
    return this.lines.join('\n');
  }
  /** Lines at `error` or `fatal`, read as JSON (so a change of log shape cannot make this vacuous). */
  errors(): string[] {
    return this.lines.filter((line) => {
      const level = (JSON.parse(line) as Record<string, unknown>)['log.level'];
      assert.equal(typeof level, 'string', `a log line without log.level: ${line}`);
      return level === 'error' || level === 'fatal';
    });
  }
}

export interface TestServer {
  keyward: Keyward;
  /** Base URL, equal to the issuer. */
  url: string;
  logs: CapturedLogs;
  stop(): Promise<void>;
}

export interface StartOptions {
  now?: () => Date;
  store?: Store;
  /** Timers for the key schedule (a TestClock's), so the test steps it. */
  timers?: KeywardOptions['timers'];
}

/**
 * Starts a real Keyward on a loopback port against `db`. The issuer must equal the URL the
 * server is reachable at and is fixed when the Provider is built, before the server binds: so
 * the port is chosen first and a start whose port was taken meanwhile is repeated (net.ts).
 * An explicit PORT in `env` is used as given.
 */
export async function startServer(db: TestDatabase, env: Record<string, string> = {}, options: StartOptions = {}): Promise<TestServer> {
  const start = async (port: string): Promise<TestServer> => {
    const url = `http://127.0.0.1:${port}`;
    const config = testConfig(db, { ISSUER: url, ...env, PORT: port });
    const logs = new CapturedLogs();
    const keyward = await createKeyward(config, {
      logger: logs.logger,
      ...(options.now ? { now: options.now } : {}),
      ...(options.store ? { store: options.store } : {}),
      ...(options.timers ? { timers: options.timers } : {}),
    });
    try {
      await keyward.listen();
    } catch (error) {
      await keyward.close();
      throw error;
    }
    return { keyward, url, logs, stop: () => keyward.close() };
  };
  return env.PORT ? start(env.PORT) : onFreshPort((port) => start(String(port)));
}

/** Opens a store on `db` without a server (for store-level tests). */
export function openTestStore(db: TestDatabase): Promise<Store> {
  return openStore({ databaseUrl: db.url, dataDir: db.kind === 'pglite' ? path.join(db.dir, 'pgdata') : '' });
}


export const silentLogger = (): Logger => pino({ level: 'silent' });
