import { createLocalJWKSet, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { LRUCache } from 'lru-cache';

/** Where an issuer's keys come from: its discovery document, or a jwks_uri an admin named. */
export interface KeySource {
  issuer: string;
  jwksUri: string | undefined;
}

export interface IssuerKeysOptions {
  /** Milliseconds since some epoch; tests move it. */
  now?: () => number;
  fetch?: typeof globalThis.fetch;
  /** Per request (discovery, JWKS). */
  timeoutMs?: number;
  /** Largest discovery or JWKS response read. */
  maxBytes?: number;
  /** Most key sets held (one per issuer and jwks_uri). */
  maxSources?: number;
  /** An unknown kid refetches a key set at most this often (keyward/verify does the same). */
  refetchIntervalMs?: number;
  /** Lifetime of a key set whose response says nothing (no Cache-Control max-age). */
  defaultTtlMs?: number;
  /** Bounds of a Cache-Control max-age: a tiny one must not make every request fetch, a huge one must not pin a key for ever. */
  minTtlMs?: number;
  maxTtlMs?: number;
}

/** The key set could not be fetched or read (network, status, size, shape, issuer mismatch). */
export class KeysUnavailable extends Error {
  override name = 'KeysUnavailable';
}

interface Entry {
  keys: JWTVerifyGetKey;
  kids: Set<string>;
  fetchedAt: number;
  expiresAt: number;
}

/**
 * External issuers' public keys (federated credentials). Each key set is cached for its
 * response's `Cache-Control: max-age` (bounded), refetched when it expired, and refetched on an
 * unknown kid at most once per `refetchIntervalMs`, which is how an issuer's key rotation is
 * picked up without letting random kids make Keyward fetch on every request. Concurrent
 * requests for one source share one fetch. Responses are read with a timeout and a size limit.
 *
 * Issuers on private or loopback addresses are fetched: an admin named them explicitly
 * (unlike a client's jwks_uri, which oidc-provider's SSRF guard covers).
 */
export class IssuerKeys {
  readonly #cache: LRUCache<string, Entry>;
  readonly #inflight = new Map<string, Promise<Entry>>();
  readonly #now: () => number;
  readonly #fetch: typeof globalThis.fetch;
  readonly #timeoutMs: number;
  readonly #maxBytes: number;
  readonly #refetchIntervalMs: number;
  readonly #defaultTtlMs: number;
  readonly #minTtlMs: number;
  readonly #maxTtlMs: number;
  #fetches = 0;

  constructor(options: IssuerKeysOptions = {}) {
    this.#now = options.now ?? (() => Date.now());
    this.#fetch = options.fetch ?? globalThis.fetch;
    this.#timeoutMs = options.timeoutMs ?? 2_500;
    this.#maxBytes = options.maxBytes ?? 256 * 1024;
    this.#refetchIntervalMs = options.refetchIntervalMs ?? 30_000;
    this.#defaultTtlMs = options.defaultTtlMs ?? 5 * 60_000;
    this.#minTtlMs = options.minTtlMs ?? 30_000;
    this.#maxTtlMs = options.maxTtlMs ?? 24 * 3_600_000;
    this.#cache = new LRUCache({ max: options.maxSources ?? 1_000 });
  }

  /** How many HTTP requests this instance made (discovery and JWKS), for tests and the benchmark. */
  get fetches(): number {
    return this.#fetches;
  }

  /** Forgets every cached key set (the benchmark's cold case). */
  clear(): void {
    this.#cache.clear();
  }

  /**
   * A jose key resolver for a token with header `kid`: the cached set when it is fresh and
   * holds the kid (or the token names none), else a refetched one when allowed.
   */
  async resolver(source: KeySource, kid: string | undefined): Promise<JWTVerifyGetKey> {
    const key = `${source.issuer} ${source.jwksUri ?? ''}`;
    const cached = this.#cache.get(key);
    const now = this.#now();
    if (cached && now < cached.expiresAt && (kid === undefined || cached.kids.has(kid))) return cached.keys;
    // Expired: refetch. Fresh but the kid is unknown: refetch unless that happened just now.
    if (cached && now < cached.expiresAt && now - cached.fetchedAt < this.#refetchIntervalMs) return cached.keys;
    let pending = this.#inflight.get(key);
    if (!pending) {
      pending = this.#load(source).finally(() => this.#inflight.delete(key));
      this.#inflight.set(key, pending);
    }
    try {
      const entry = await pending;
      this.#cache.set(key, entry);
      return entry.keys;
    } catch (error) {
      // A stale set still verifies what it can while the issuer is unreachable.
      if (cached) return cached.keys;
      throw error;
    }
  }

  async #load(source: KeySource): Promise<Entry> {
    let jwksUri = source.jwksUri;
    if (!jwksUri) {
      const discovery = await this.#json(`${source.issuer}/.well-known/openid-configuration`);
      const document = discovery.body as { issuer?: unknown; jwks_uri?: unknown };
      // OpenID Connect Discovery §4.3: the document's issuer must be the one it was fetched for.
      if (document.issuer !== source.issuer) throw new KeysUnavailable('the discovery document names another issuer');
      if (typeof document.jwks_uri !== 'string' || !/^https?:\/\//.test(document.jwks_uri)) throw new KeysUnavailable('the discovery document has no http(s) jwks_uri');
      jwksUri = document.jwks_uri;
    }
    const { body, ttlMs } = await this.#json(jwksUri);
    const set = body as { keys?: unknown };
    if (!Array.isArray(set.keys)) throw new KeysUnavailable('the JWKS has no keys array');
    // Only public keys of asymmetric types take part; a symmetric or private member is never used.
    const keys = (set.keys as Record<string, unknown>[]).filter((k) => k && typeof k === 'object' && ['RSA', 'EC', 'OKP'].includes(k.kty as string)
      && !('d' in k) && !('k' in k) && k.use !== 'enc').slice(0, 50);
    const now = this.#now();
    return {
      keys: createLocalJWKSet({ keys } as JSONWebKeySet),
      kids: new Set(keys.map((k) => k.kid).filter((kid): kid is string => typeof kid === 'string')),
      fetchedAt: now,
      expiresAt: now + ttlMs,
    };
  }

  async #json(url: string): Promise<{ body: unknown; ttlMs: number }> {
    this.#fetches += 1;
    let response: Response;
    try {
      response = await this.#fetch(url, { headers: { accept: 'application/json' }, redirect: 'error', signal: AbortSignal.timeout(this.#timeoutMs) });
    } catch (error) {
      throw new KeysUnavailable(`fetching ${url} failed: ${(error as Error).name}`);
    }
    if (response.status !== 200) {
      await response.body?.cancel();
      throw new KeysUnavailable(`${url} answered ${response.status}`);
    }
    const text = await readLimited(response, this.#maxBytes);
    if (text === undefined) throw new KeysUnavailable(`${url} answered more than ${this.#maxBytes} bytes`);
    try {
      return { body: JSON.parse(text) as unknown, ttlMs: this.#ttlOf(response.headers.get('cache-control')) };
    } catch {
      throw new KeysUnavailable(`${url} did not answer JSON`);
    }
  }

  #ttlOf(cacheControl: string | null): number {
    const maxAge = /(?:^|,)\s*max-age=(\d+)/i.exec(cacheControl ?? '');
    if (!maxAge) return this.#defaultTtlMs;
    return Math.min(this.#maxTtlMs, Math.max(this.#minTtlMs, Number(maxAge[1]) * 1000));
  }
}

/** The body as text, or undefined as soon as it passes `limit` bytes (the rest is not read). */
async function readLimited(response: Response, limit: number): Promise<string | undefined> {
  const declared = Number(response.headers.get('content-length'));
  if (declared > limit) {
    await response.body?.cancel();
    return undefined;
  }
  if (!response.body) return '';
  const chunks: Uint8Array[] = [];
  let size = 0;
  for await (const chunk of response.body as unknown as AsyncIterable<Uint8Array>) {
    size += chunk.byteLength;
    // Leaving the loop cancels the stream.
    if (size > limit) return undefined;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks).toString('utf8');
}
