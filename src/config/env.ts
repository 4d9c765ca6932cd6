import { readFileSync } from 'node:fs';
import os from 'node:os';
import { z } from 'zod';
import { DURATION_FORM, parseDuration } from './duration.ts';
import { CHOSEN_CLIENT_ID_MIN, CLIENT_ID } from '../identity/ids.ts';
import { SIGNING_ALGS, type SigningAlg } from '../keys/algorithms.ts';

import { ConfigError } from './errors.ts';
import { loadTls, type TlsConfig } from './tls.ts';

export { ConfigError };

const duration = z.string().transform((text, ctx) => {
  const ms = parseDuration(text);
  if (ms === undefined) {
    ctx.addIssue({ code: 'custom', message: `expected ${DURATION_FORM}, got "${text}"` });
    return z.NEVER;
  }
  return ms;
});

const boolean = z.enum(['true', 'false', '1', '0']).transform((v) => v === 'true' || v === '1');

const postgresUrl = z.string().refine((text) => {
  try {
    const url = new URL(text);
    return (url.protocol === 'postgres:' || url.protocol === 'postgresql:') && url.hostname !== '';
  } catch {
    return false;
  }
}, 'expected postgres://user:password@host:5432/database');

const kek = z.string().refine((text) => /^[A-Za-z0-9+/]{43}=$/.test(text) && Buffer.from(text, 'base64').length === 32,
  'expected 32 random bytes in base64 (44 characters), e.g. from `openssl rand -base64 32`');

const httpUrl = z.string().refine((text) => {
  try {
    const url = new URL(text);
    return (url.protocol === 'http:' || url.protocol === 'https:') && !url.search && !url.hash;
  } catch {
    return false;
  }
}, 'expected an absolute http(s) URL without query or fragment, e.g. https://id.example.com');

const signingAlgs = z.string().transform((text, ctx) => {
  const algs = [...new Set(text.split(',').map((a) => a.trim()).filter(Boolean))];
  const unknown = algs.filter((a) => !(SIGNING_ALGS as readonly string[]).includes(a));
  if (unknown.length) {
    ctx.addIssue({ code: 'custom', message: `unknown algorithm ${unknown.join(', ')}; expected a comma-separated list of ${SIGNING_ALGS.join(', ')}` });
    return z.NEVER;
  }
  // OpenID Connect Core §15.1: an OP must be able to sign ID tokens with RS256.
  if (!algs.includes('RS256')) {
    ctx.addIssue({ code: 'custom', message: 'must include RS256 (required by OpenID Connect), e.g. ES256,RS256,EdDSA' });
    return z.NEVER;
  }
  return algs as SigningAlg[];
});

/** A rate: `<requests>/<duration>`, e.g. `600/1m`. */
const rate = z.string().transform((text, ctx) => {
  const match = /^(\d{1,7})\/(.+)$/.exec(text.trim());
  const durationMs = match ? parseDuration(match[2]!) : undefined;
  if (!match || !durationMs || Number(match[1]) < 1) {
    ctx.addIssue({ code: 'custom', message: `expected <requests>/<duration> such as 600/1m (duration: ${DURATION_FORM}), got "${text}"` });
    return z.NEVER;
  }
  return { points: Number(match[1]), durationMs };
});

export interface Rate {
  points: number;
  durationMs: number;
}

const clientIdForm = `expected ${CHOSEN_CLIENT_ID_MIN}-128 characters of A-Z a-z 0-9 . _ ~ -`;

const schema = z.object({
  PORT: z.coerce.number().int().min(0).max(65535).default(3000),
  HOST: z.string().min(1).default('0.0.0.0'),
  ISSUER: httpUrl.optional(),
  DATABASE_URL: postgresUrl.optional(),
  KEYWARD_DATA_DIR: z.string().min(1).default('./data'),
  KEYWARD_KEK: kek.optional(),
  KEYWARD_KEK_FILE: z.string().min(1).default('./keys/kek'),
  KEYWARD_KEK_PREVIOUS: kek.optional(),
  KEYWARD_AUTO_MIGRATE: boolean.default(true),
  KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: z.string().min(CHOSEN_CLIENT_ID_MIN, clientIdForm).regex(CLIENT_ID, clientIdForm).optional(),
  KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: z.string().min(32, 'expected at least 32 characters').max(512).optional(),
  KEYWARD_KEY_ROTATION_INTERVAL: duration.default(30 * 86_400_000),
  KEYWARD_KEY_ROTATION_WAIT_FOR_CONSUMERS: boolean.default(false),
  KEYWARD_KEY_ROTATION_MAX_DELAY: duration.default(7 * 86_400_000),
  KEYWARD_SIGNING_ALGS: signingAlgs.default(['ES256', 'RS256']),
  KEYWARD_AUDIT_RETENTION: duration.default(90 * 86_400_000),
  KEYWARD_SHUTDOWN_TIMEOUT: duration.default(10_000),
  KEYWARD_PROXY_HOPS: z.coerce.number().int().min(0).max(10).default(0),
  KEYWARD_ALLOW_PRIVATE_JWKS_URI: boolean.default(false),
  KEYWARD_METRICS_TOKEN: z.string().min(16, 'expected at least 16 characters').max(512).optional(),
  KEYWARD_RATE_LIMIT: z.enum(['on', 'off']).default('on'),
  KEYWARD_RATE_LIMIT_TOKEN: rate.default({ points: 6000, durationMs: 60_000 }),
  KEYWARD_RATE_LIMIT_LOGIN: rate.default({ points: 300, durationMs: 60_000 }),
  KEYWARD_RATE_LIMIT_DEVICE: rate.default({ points: 120, durationMs: 60_000 }),
  KEYWARD_DEVICE_CODE_TTL: duration.refine((ms) => ms >= 60_000 && ms <= 3_600_000, 'expected between 1m and 1h (RFC 8628 device codes are short-lived)').default(600_000),
  KEYWARD_DEVICE_POLL_INTERVAL: duration.refine((ms) => ms >= 1000 && ms <= 60_000 && ms % 1000 === 0, 'expected whole seconds between 1s and 60s').default(5_000),
  KEYWARD_AUDIT_BUFFER_MAX: z.coerce.number().int().min(100).max(10_000_000).default(50_000),
  KEYWARD_AUDIT_LOG: z.enum(['debug', 'info']).default('debug'),
  KEYWARD_DB_CONNECT_TIMEOUT: duration.default(2_000),
  KEYWARD_DB_STATEMENT_TIMEOUT: duration.default(5_000),
  KEYWARD_DB_POOL_SIZE: z.coerce.number().int().min(2).max(200).default(10),
  KEYWARD_CACHE_MAX_STALENESS: duration.default(5 * 60_000),
  KEYWARD_CLIENT_CACHE_SIZE: z.coerce.number().int().min(100).max(10_000_000).default(50_000),
  KEYWARD_FEDERATION_MAX_TOKEN_AGE: duration.default(3_600_000),
  KEYWARD_TLS_CERT_FILE: z.string().optional(),
  KEYWARD_TLS_KEY_FILE: z.string().optional(),
  KEYWARD_TLS_CLIENT_CA_FILE: z.string().optional(),
  KEYWARD_CLIENT_CERT_HEADER: z.string().regex(/^[A-Za-z0-9-]{1,100}$/, 'expected an HTTP header name such as X-SSL-Client-Cert').transform((h) => h.toLowerCase()).optional(),
  KEYWARD_DPOP_REQUIRE_NONCE: boolean.default(false),
  KEYWARD_WORKERS: z.string().regex(/^(auto|[1-9]\d{0,2})$/, 'expected auto (one per core) or a number of worker processes from 1 to 999').default('1'),
  LOG_LEVEL: z.enum(['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent']).default('info'),
});

export interface Config {
  port: number;
  host: string;
  issuer: string;
  /** Set: PostgreSQL. Unset: embedded PGlite under `dataDir`. */
  databaseUrl: string | undefined;
  dataDir: string;
  kek: Buffer | undefined;
  kekFile: string;
  /** The KEK being replaced: what only it decrypts is re-encrypted under `kek` at start (or by `keys rekey`). */
  kekPrevious: Buffer | undefined;
  /** The variables the KEKs came from, for error messages (KEYWARD_KEK or KEYWARD_KEK_FILE=…; KEYWARD_KEK_PREVIOUS[_FILE]). */
  kekNames: { current: string; previous: string };
  autoMigrate: boolean;
  bootstrapAdmin: { clientId: string | undefined; clientSecret: string | undefined };
  keyRotationIntervalMs: number;
  /** Scheduled rotation waits until every JWKS consumer seen recently has fetched the next key, at most keyRotationMaxDelayMs. */
  keyRotationWaitForConsumers: boolean;
  keyRotationMaxDelayMs: number;
  /** Algorithms that always have a signing key (KEYWARD_SIGNING_ALGS). */
  signingAlgs: SigningAlg[];
  auditRetentionMs: number;
  shutdownTimeoutMs: number;
  /** Reverse proxies in front whose X-Forwarded-* headers are trusted (0: none, use the socket). */
  proxyHops: number;
  /** Clients' jwks_uri may name private or loopback addresses (oidc-provider's SSRF guard lifted). */
  allowPrivateJwksUri: boolean;
  /** Set: /metrics answers only `Authorization: Bearer <token>`. */
  metricsToken: string | undefined;
  /** Per-IP request rates on the token, login and device endpoints; undefined = off (a gateway does it). */
  rateLimits: { token: Rate; login: Rate; device: Rate } | undefined;
  /** How long a device code and its user code live (RFC 8628 §3.2 expires_in). */
  deviceCodeTtlMs: number;
  /** The least time between a device's token requests (RFC 8628 §3.2 interval); faster polls get slow_down. */
  devicePollIntervalMs: number;
  /** Most audit events held while the store does not take them. */
  auditBufferMax: number;
  /** Level of the log line each audit event becomes (KEYWARD_AUDIT_LOG): `debug` unless asked for `info`. */
  auditLogLevel: 'debug' | 'info';
  /** PostgreSQL connection settings: fail fast rather than hang when the database is away. */
  db: { connectTimeoutMs: number; statementTimeoutMs: number; poolSize: number };
  /** How long cached clients, roles and resources stay in use without word from the store (LISTEN down). */
  cacheMaxStalenessMs: number;
  /**
   * Clients whose records and oidc-provider Client objects are kept in memory (each cache an
   * LRU). Above the number of clients active at once: clients taking turns in a fleet larger
   * than an LRU miss on every request.
   */
  clientCacheSize: number;
  /** Oldest (by `iat`) an external token may be to authenticate a federated_jwt client. */
  federationMaxTokenAgeMs: number;
  /** KEYWARD_TLS_CERT_FILE/_KEY_FILE: the listener speaks HTTPS and asks (not requires) for a client certificate. */
  tls: TlsConfig | undefined;
  /** KEYWARD_TLS_CLIENT_CA_FILE: the CA bundle tls_client_auth certificates must chain to. */
  clientCa: Buffer | undefined;
  /** KEYWARD_CLIENT_CERT_HEADER (lower case): the client certificate from a TLS-terminating proxy; honoured only with proxyHops > 0. */
  clientCertHeader: string | undefined;
  /** KEYWARD_DPOP_REQUIRE_NONCE: every DPoP proof must carry a server nonce (RFC 9449 §8). */
  dpopRequireNonce: boolean;
  /** KEYWARD_WORKERS: HTTP worker processes sharing the port (node:cluster); 1 = no cluster. */
  workers: number;
  logLevel: z.infer<typeof schema>['LOG_LEVEL'];
}

/**
 * Secret-bearing variables that may instead name a file holding the value (`X_FILE`), as Docker
 * and Kubernetes secrets, Vault Agent and the Secrets Store CSI driver provide them.
 * (KEYWARD_KEK_FILE predates this and means more: the file is created on first start.)
 */
export const FILE_VARIABLES = ['DATABASE_URL', 'KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET', 'KEYWARD_METRICS_TOKEN', 'KEYWARD_KEK_PREVIOUS'] as const;

/** Replaces each `X_FILE` by `X` with the file's content (one trailing newline dropped); returns which came from files. */
function readFileVariables(present: Record<string, string>): { env: Record<string, string>; fromFile: Set<string> } {
  const env = { ...present };
  const fromFile = new Set<string>();
  for (const variable of FILE_VARIABLES) {
    const fileVariable = `${variable}_FILE`;
    const file = env[fileVariable];
    if (file === undefined) continue;
    if (env[variable] !== undefined) throw new ConfigError(`invalid ${fileVariable}: set either ${variable} or ${fileVariable}, not both`);
    let content: string;
    try {
      content = readFileSync(file, 'utf8');
    } catch (error) {
      const code = (error as NodeJS.ErrnoException).code;
      throw new ConfigError(`invalid ${fileVariable}: cannot read ${file}${code ? ` (${code})` : ''}`);
    }
    const value = content.replace(/\r?\n$/, '');
    if (value === '') throw new ConfigError(`invalid ${fileVariable}: ${file} is empty`);
    if (/[\r\n]/.test(value)) throw new ConfigError(`invalid ${fileVariable}: ${file} holds more than one line`);
    delete env[fileVariable];
    env[variable] = value;
    fromFile.add(variable);
  }
  return { env, fromFile };
}

/** Parses the environment once; the first invalid variable is reported by name. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): Config {
  const present = Object.fromEntries(Object.entries(env).filter((entry): entry is [string, string] => entry[1] !== undefined && entry[1] !== ''));
  const { env: resolved, fromFile } = readFileVariables(present);
  const parsed = schema.safeParse(resolved);
  if (!parsed.success) {
    const issue = parsed.error.issues[0]!;
    const variable = String(issue.path[0] ?? 'environment');
    // A value read from a file is named by the variable the operator set (and never echoed).
    throw new ConfigError(`invalid ${fromFile.has(variable) ? `${variable}_FILE` : variable}: ${issue.message}`);
  }
  const e = parsed.data;
  const workers = e.KEYWARD_WORKERS === 'auto' ? os.availableParallelism() : Number(e.KEYWARD_WORKERS);
  if (workers > 1 && e.DATABASE_URL === undefined) {
    throw new ConfigError(`invalid KEYWARD_WORKERS: ${workers} workers need PostgreSQL (DATABASE_URL); the embedded PGlite store serves one process`);
  }
  if ((e.KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID === undefined) !== (e.KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET === undefined)) {
    throw new ConfigError('invalid KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: set both KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID and KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET, or neither');
  }
  return {
    port: e.PORT,
    host: e.HOST,
    issuer: (e.ISSUER ?? `http://localhost:${e.PORT}`).replace(/\/$/, ''),
    databaseUrl: e.DATABASE_URL,
    dataDir: e.KEYWARD_DATA_DIR,
    kek: e.KEYWARD_KEK === undefined ? undefined : Buffer.from(e.KEYWARD_KEK, 'base64'),
    kekFile: e.KEYWARD_KEK_FILE,
    kekPrevious: e.KEYWARD_KEK_PREVIOUS === undefined ? undefined : Buffer.from(e.KEYWARD_KEK_PREVIOUS, 'base64'),
    kekNames: {
      current: e.KEYWARD_KEK === undefined ? `KEYWARD_KEK_FILE (${e.KEYWARD_KEK_FILE})` : 'KEYWARD_KEK',
      previous: fromFile.has('KEYWARD_KEK_PREVIOUS') ? 'KEYWARD_KEK_PREVIOUS_FILE' : 'KEYWARD_KEK_PREVIOUS',
    },
    autoMigrate: e.KEYWARD_AUTO_MIGRATE,
    bootstrapAdmin: { clientId: e.KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID, clientSecret: e.KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET },
    keyRotationIntervalMs: e.KEYWARD_KEY_ROTATION_INTERVAL,
    keyRotationWaitForConsumers: e.KEYWARD_KEY_ROTATION_WAIT_FOR_CONSUMERS,
    keyRotationMaxDelayMs: e.KEYWARD_KEY_ROTATION_MAX_DELAY,
    signingAlgs: e.KEYWARD_SIGNING_ALGS,
    auditRetentionMs: e.KEYWARD_AUDIT_RETENTION,
    shutdownTimeoutMs: e.KEYWARD_SHUTDOWN_TIMEOUT,
    proxyHops: e.KEYWARD_PROXY_HOPS,
    allowPrivateJwksUri: e.KEYWARD_ALLOW_PRIVATE_JWKS_URI,
    metricsToken: e.KEYWARD_METRICS_TOKEN,
    rateLimits: e.KEYWARD_RATE_LIMIT === 'off' ? undefined
      : { token: e.KEYWARD_RATE_LIMIT_TOKEN, login: e.KEYWARD_RATE_LIMIT_LOGIN, device: e.KEYWARD_RATE_LIMIT_DEVICE },
    deviceCodeTtlMs: e.KEYWARD_DEVICE_CODE_TTL,
    devicePollIntervalMs: e.KEYWARD_DEVICE_POLL_INTERVAL,
    auditBufferMax: e.KEYWARD_AUDIT_BUFFER_MAX,
    auditLogLevel: e.KEYWARD_AUDIT_LOG,
    db: { connectTimeoutMs: e.KEYWARD_DB_CONNECT_TIMEOUT, statementTimeoutMs: e.KEYWARD_DB_STATEMENT_TIMEOUT, poolSize: e.KEYWARD_DB_POOL_SIZE },
    cacheMaxStalenessMs: e.KEYWARD_CACHE_MAX_STALENESS,
    clientCacheSize: e.KEYWARD_CLIENT_CACHE_SIZE,
    federationMaxTokenAgeMs: e.KEYWARD_FEDERATION_MAX_TOKEN_AGE,
    ...loadTls(e),
    clientCertHeader: e.KEYWARD_CLIENT_CERT_HEADER,
    dpopRequireNonce: e.KEYWARD_DPOP_REQUIRE_NONCE,
    workers,
    logLevel: e.LOG_LEVEL,
  };
}
