import { LRUCache } from 'lru-cache';
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';

/** Encoded size past which a token is reported: gateways and header limits break near 8 KB. */
export const TOKEN_SIZE_WARNING_BYTES = 4096;

/** The latest oversized token a client received, as GET /admin/v1/clients/{id} shows it. */
export interface TokenSizeWarning {
  /** `access_token` or `id_token`. */
  token: string;
  /** The API the access token is for; absent for an ID token or a userinfo-only token. */
  audience?: string | undefined;
  /** Encoded size in bytes. */
  size: number;
  threshold: number;
  at: string;
}

/** Where a warning goes besides the admin API: a log line with client_id, audience and size, never the token. */
export type WarnLog = (fields: { client_id: string; token: string; audience?: string | undefined; size: number; threshold: number }, message: string) => void;

/**
 * Watches the encoded size of every token the token endpoint issues (roles per API keep
 * tokens small; many roles or scopes can still grow them). Per instance and bounded: the
 * latest warning per client, for at most `max` clients; the log line is the fleet-wide record.
 */
export class TokenSizeWatch {
  readonly #latest: LRUCache<string, TokenSizeWarning>;

  constructor(private readonly warn: WarnLog, private readonly now: () => Date, max = 1000) {
    this.#latest = new LRUCache({ max });
  }

  observe(clientId: string, token: string, value: unknown, audience: string | undefined): void {
    if (typeof value !== 'string') return;
    const size = Buffer.byteLength(value, 'utf8');
    if (size <= TOKEN_SIZE_WARNING_BYTES) return;
    const warning = { token, ...(audience ? { audience } : {}), size, threshold: TOKEN_SIZE_WARNING_BYTES, at: this.now().toISOString() };
    this.#latest.set(clientId, warning);
    this.warn({ client_id: clientId, token, audience, size, threshold: TOKEN_SIZE_WARNING_BYTES }, 'token larger than 4 KB issued; gateways and header limits break near 8 KB');
  }

  /** The latest oversized token of this client seen by this instance, or null. */
  forClient(clientId: string): TokenSizeWarning | null {
    return this.#latest.get(clientId) ?? null;
  }
}

interface AudienceCarrier {
  resourceServer?: { audience?: string };
}

/** Checks the tokens of every successful token response (oidc-provider's `grant.success` event). */
export function installTokenSizeWatch(provider: Provider, watch: TokenSizeWatch): void {
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const { client, entities } = ctx.oidc;
    const body = ctx.body as { access_token?: unknown; id_token?: unknown } | undefined;
    if (!client || !body) return;
    const token = (entities.ClientCredentials ?? entities.AccessToken) as AudienceCarrier | undefined;
    watch.observe(client.clientId, 'access_token', body.access_token, token?.resourceServer?.audience);
    watch.observe(client.clientId, 'id_token', body.id_token, undefined);
  });
}
