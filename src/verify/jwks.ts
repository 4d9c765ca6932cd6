import { createLocalJWKSet, errors, type JSONWebKeySet, type JWTVerifyGetKey } from 'jose';
import { KeySetUnavailable } from './errors.ts';

/** Why a key-set fetch happened: the first use, a cached copy past its max-age, a token naming a kid not in it. */
export type FetchReason = 'initial' | 'expired' | 'unknown_kid';

export interface JwksOptions {
  /** The issuer; the JWKS URL is read from its discovery document unless `jwksUri` is given. */
  issuer: string;
  /** Skip discovery (e.g. when the gateway reaches Keyward at an internal address). */
  jwksUri?: string | undefined;
  /** A token naming an unknown kid refetches at most this often (default 30 s): random kids cannot turn into a fetch storm. */
  unknownKidCooldownSeconds?: number | undefined;
  /** Lifetime of a copy whose response has no `Cache-Control: max-age` (default 300 s). */
  defaultMaxAgeSeconds?: number | undefined;
  /**
   * How long past its max-age a copy is still used while the issuer cannot be reached
   * (default 3600 s; a `stale-if-error` directive in the response, RFC 5861, takes precedence).
   */
  staleIfErrorSeconds?: number | undefined;
  /** Per request (default 5 s). */
  timeoutSeconds?: number | undefined;
  fetch?: typeof fetch | undefined;
  now?: (() => Date) | undefined;
  /** Called after every fetch attempt (metrics). */
  onFetch?: ((event: { reason: FetchReason; ok: boolean; error?: unknown }) => void) | undefined;
}

interface KeySet {
  keys: JSONWebKeySet;
  select: JWTVerifyGetKey;
  fetchedAt: number;
  expiresAt: number;
  /** Until when this copy may stand in for a failed refresh. */
  staleUntil: number;
}

/** Cache lifetimes are clamped to [1 s, 1 day]: `no-store` must not mean a fetch per request, nor a typo a year. */
const MIN_AGE_S = 1;
const MAX_AGE_S = 86_400;

/**
 * The issuer's key set, fetched from discovery and cached per its `Cache-Control`.
 *
 * - Every fetch is shared: any number of concurrent callers needing a refresh wait for one request.
 * - A copy past its max-age is refreshed before use; if the issuer is unreachable, the stale copy is
 *   used up to `stale-if-error`, and another attempt is made at most once per cooldown.
 * - A token whose kid is not in the copy triggers a refetch at most once per cooldown (default
 *   30 s): a new key published by a rotation is picked up at once, a flood of forged kids costs
 *   one request per cooldown.
 */
export class JwksCache {
  readonly #issuer: string;
  #jwksUri: string | undefined;
  readonly #cooldownMs: number;
  readonly #defaultMaxAgeMs: number;
  readonly #staleIfErrorMs: number;
  readonly #timeoutMs: number;
  readonly #fetch: typeof fetch;
  readonly #now: () => number;
  readonly #onFetch: JwksOptions['onFetch'];
  #set: KeySet | undefined;
  #inflight: Promise<KeySet> | undefined;
  /** Start of the last fetch attempt, successful or not (ms): paces retries while the issuer is unreachable. */
  #lastAttemptAt = Number.NEGATIVE_INFINITY;
  /** Start of the last fetch an unknown kid caused (ms): paces those alone, so a rotation is seen at once after any other fetch. */
  #lastKidMissAt = Number.NEGATIVE_INFINITY;
  #fetches = 0;
  /** Whether the JWKS URL came from discovery (and so may be looked up again). */
  #discovered = false;

  constructor(options: JwksOptions) {
    this.#issuer = options.issuer;
    this.#jwksUri = options.jwksUri;
    this.#cooldownMs = (options.unknownKidCooldownSeconds ?? 30) * 1000;
    this.#defaultMaxAgeMs = (options.defaultMaxAgeSeconds ?? 300) * 1000;
    this.#staleIfErrorMs = (options.staleIfErrorSeconds ?? 3600) * 1000;
    this.#timeoutMs = (options.timeoutSeconds ?? 5) * 1000;
    this.#fetch = options.fetch ?? globalThis.fetch.bind(globalThis);
    const now = options.now ?? (() => new Date());
    this.#now = () => now().getTime();
    this.#onFetch = options.onFetch;
  }

  /** A jose key resolver: the key for a token's header, refetching on an unknown kid as described above. */
  readonly getKey: JWTVerifyGetKey = async (header, token) => {
    const set = await this.#current();
    try {
      return await set.select(header, token);
    } catch (error) {
      if (!(error instanceof errors.JWKSNoMatchingKey)) throw error;
      const fresh = await this.#afterUnknownKid(set);
      if (!fresh) throw error;
      return fresh.select(header, token);
    }
  };

  /** What is held now (for health checks and tests). */
  status(): { loaded: boolean; kids: string[]; fetchedAt?: Date; expiresAt?: Date; fetches: number } {
    const set = this.#set;
    if (!set) return { loaded: false, kids: [], fetches: this.#fetches };
    return {
      loaded: true,
      kids: set.keys.keys.map((k) => k.kid).filter((k): k is string => typeof k === 'string'),
      fetchedAt: new Date(set.fetchedAt),
      expiresAt: new Date(set.expiresAt),
      fetches: this.#fetches,
    };
  }

  /** Fetches now unless a fetch is in flight (e.g. to warm the cache at startup). */
  async refresh(): Promise<void> {
    await this.#fetchShared(this.#set ? 'expired' : 'initial');
  }

  async #current(): Promise<KeySet> {
    const set = this.#set;
    const now = this.#now();
    if (!set) {
      try {
        return await this.#fetchShared('initial');
      } catch (error) {
        throw new KeySetUnavailable(`the issuer's key set could not be fetched: ${message(error)}`, { cause: error });
      }
    }
    if (now < set.expiresAt) return set;
    // Past max-age: refresh, but after a failed attempt only once per cooldown (the stale copy
    // answers meanwhile, so an unreachable issuer does not add its timeout to every request).
    if (this.#inflight || now - this.#lastAttemptAt >= this.#cooldownMs) {
      try {
        return await this.#fetchShared('expired');
      } catch (error) {
        if (now < set.staleUntil) return set;
        throw new KeySetUnavailable(`the issuer's key set expired and could not be refreshed: ${message(error)}`, { cause: error });
      }
    }
    if (now < set.staleUntil) return set;
    throw new KeySetUnavailable('the issuer\'s key set expired and could not be refreshed');
  }

  /** A fresher copy after a kid miss on `seen`, or undefined when none may be fetched yet. */
  async #afterUnknownKid(seen: KeySet): Promise<KeySet | undefined> {
    if (this.#set && this.#set !== seen) return this.#set;
    if (!this.#inflight) {
      if (this.#now() - this.#lastKidMissAt < this.#cooldownMs) return undefined;
      this.#lastKidMissAt = this.#now();
    }
    try {
      return await this.#fetchShared('unknown_kid');
    } catch {
      return undefined;
    }
  }

  #fetchShared(reason: FetchReason): Promise<KeySet> {
    this.#inflight ??= this.#fetchOnce(reason).finally(() => {
      this.#inflight = undefined;
    });
    return this.#inflight;
  }

  async #fetchOnce(reason: FetchReason): Promise<KeySet> {
    this.#lastAttemptAt = this.#now();
    this.#fetches++;
    try {
      const set = await this.#load();
      this.#set = set;
      this.#onFetch?.({ reason, ok: true });
      return set;
    } catch (error) {
      // A moved jwks_uri is found again through discovery on the next attempt.
      if (this.#discovered) this.#jwksUri = undefined;
      this.#onFetch?.({ reason, ok: false, error });
      throw error;
    }
  }

  async #load(): Promise<KeySet> {
    if (!this.#jwksUri) {
      const discovery = `${this.#issuer.replace(/\/$/, '')}/.well-known/openid-configuration`;
      const { body } = await this.#getJson(discovery);
      const metadata = body as { issuer?: unknown; jwks_uri?: unknown };
      // OpenID Connect Discovery 1.0 §4.3: the document must name the issuer it was asked for.
      if (metadata.issuer !== this.#issuer) throw new Error(`discovery names issuer ${String(metadata.issuer)}, expected ${this.#issuer}`);
      if (typeof metadata.jwks_uri !== 'string') throw new Error('discovery has no jwks_uri');
      this.#jwksUri = metadata.jwks_uri;
      this.#discovered = true;
    }
    const { body, cacheControl } = await this.#getJson(this.#jwksUri);
    const select = createLocalJWKSet(body as JSONWebKeySet);
    const now = this.#now();
    const maxAge = directive(cacheControl, 'max-age');
    const noCache = /(^|,)\s*(no-cache|no-store)\s*(,|$)/i.test(cacheControl ?? '');
    const ageMs = clamp(noCache ? 0 : maxAge !== undefined ? maxAge * 1000 : this.#defaultMaxAgeMs);
    const staleMs = (directive(cacheControl, 'stale-if-error') ?? this.#staleIfErrorMs / 1000) * 1000;
    return { keys: body as JSONWebKeySet, select, fetchedAt: now, expiresAt: now + ageMs, staleUntil: now + ageMs + staleMs };
  }

  async #getJson(url: string): Promise<{ body: unknown; cacheControl: string | null }> {
    const res = await this.#fetch(url, { headers: { accept: 'application/json', 'user-agent': 'keyward-verify' }, signal: AbortSignal.timeout(this.#timeoutMs), redirect: 'error' });
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    const body: unknown = await res.json();
    if (typeof body !== 'object' || body === null || Array.isArray(body)) throw new Error(`${url} did not answer a JSON object`);
    return { body, cacheControl: res.headers.get('cache-control') };
  }
}

function directive(cacheControl: string | null, name: string): number | undefined {
  const match = new RegExp(`(?:^|,)\\s*${name}\\s*=\\s*"?(\\d{1,10})"?`, 'i').exec(cacheControl ?? '');
  return match ? Number(match[1]) : undefined;
}

function clamp(ms: number): number {
  return Math.min(MAX_AGE_S * 1000, Math.max(MIN_AGE_S * 1000, ms));
}

function message(error: unknown): string {
  return error instanceof Error ? error.message : String(error);
}
