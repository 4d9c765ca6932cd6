import type { Adapter, AdapterPayload, Configuration, KoaContextWithOIDC, Provider } from 'oidc-provider';
import { AUTH_METHODS, isConfidential, type ClientService } from '../identity/clients/index.ts';

/**
 * oidc-provider requires a `client_secret` in the metadata of secret-authenticated clients.
 * Keyward stores only HMACs, so the metadata carries this marker and authentication goes
 * through `compareClientSecret` below; HS* algorithms and client_secret_jwt, which would use
 * the marker as key material, are disabled (see policy.ts).
 */
const SECRET_PLACEHOLDER = 'keyward:hashed-secret';

/** The "Client" model of oidc-provider, read from Keyward's client registry (cached). */
export class ClientAdapter implements Adapter {
  /**
   * @param oidcScopes the provider's own scopes (see `oidcScopesOf`). oidc-provider rejects a
   *   client whose `scope` metadata names anything else, so only that part is handed over;
   *   API scopes in `scope` are enforced by resources.ts.
   */
  constructor(
    private readonly clients: ClientService,
    private readonly oidcScopes: ReadonlySet<string> = new Set(['openid', 'offline_access']),
  ) {}

  async find(clientId: string): Promise<AdapterPayload | undefined> {
    const record = await this.clients.record(clientId);
    if (!record || record.disabled) return undefined;
    const { metadata } = record;
    const usesCode = metadata.grant_types.includes('authorization_code');
    return {
      client_id: record.clientId,
      client_name: record.name,
      grant_types: metadata.grant_types,
      response_types: usesCode ? ['code'] : [],
      redirect_uris: metadata.redirect_uris,
      post_logout_redirect_uris: metadata.post_logout_redirect_uris,
      token_endpoint_auth_method: metadata.token_endpoint_auth_method,
      ...(isConfidential(metadata.token_endpoint_auth_method) ? { client_secret: SECRET_PLACEHOLDER } : {}),
      ...(metadata.jwks ? { jwks: metadata.jwks } : {}),
      ...(metadata.jwks_uri ? { jwks_uri: metadata.jwks_uri } : {}),
      ...this.#oidcScope(metadata.scope),
      ...(metadata.default_resource ? { default_resource: metadata.default_resource } : {}),
    } as AdapterPayload;
  }

  #oidcScope(scope: string | undefined): { scope?: string } {
    const own = scope?.split(' ').filter((s) => this.oidcScopes.has(s)) ?? [];
    return own.length ? { scope: own.join(' ') } : {};
  }

  // Clients are managed through the admin API, never by oidc-provider itself.
  async upsert(): Promise<void> {}
  async findByUid(): Promise<undefined> { return undefined; }
  async findByUserCode(): Promise<undefined> { return undefined; }
  async consume(): Promise<void> {}
  async destroy(): Promise<void> {}
  async revokeByGrantId(): Promise<void> {}
}

export function clientConfiguration(): Partial<Configuration> {
  return {
    clientAuthMethods: [...AUTH_METHODS],
    extraClientMetadata: {
      properties: ['default_resource'],
      validator(_ctx, key, value) {
        if (key === 'default_resource' && value !== undefined && typeof value !== 'string') {
          throw new TypeError('default_resource must be a string');
        }
      },
    },
  };
}

/**
 * The scopes oidc-provider itself knows (`scopes` plus every scope named in `claims`),
 * mirroring its own collection so the client adapter can split a client's `scope`.
 */
export function oidcScopesOf(configuration: Configuration): Set<string> {
  const scopes = new Set(configuration.scopes ?? ['openid', 'offline_access']);
  for (const [name, value] of Object.entries(configuration.claims ?? {})) {
    if (Array.isArray(value) || (value !== null && typeof value === 'object')) scopes.add(name);
  }
  return scopes;
}

/** True when an authenticated client asked the token endpoint for a grant type it is not registered for. */
export function grantTypeRefused(ctx: KoaContextWithOIDC): boolean {
  const oidc = ctx.oidc as KoaContextWithOIDC['oidc'] | undefined;
  const grantType = oidc?.params?.grant_type;
  return oidc?.route === 'token' && !!oidc.client && typeof grantType === 'string' && !oidc.client.grantTypeAllowed(grantType);
}

const CLIENT_AUTH_ROUTES = new Set(['token', 'introspection', 'revocation']);

/**
 * Per-client policy at the token endpoint that oidc-provider answers differently:
 * - RFC 6749 §5.2: a client using a grant type it is not registered for gets
 *   `unauthorized_client` (oidc-provider says `invalid_request`);
 * - RFC 9110 §15.5.2: every 401 carries a `WWW-Authenticate` challenge (oidc-provider adds one
 *   only when the client used the Authorization header).
 */
export function installClientPolicy(provider: Provider): void {
  provider.use(async (ctx, next) => {
    await next();
    const oidc = (ctx as KoaContextWithOIDC).oidc as KoaContextWithOIDC['oidc'] | undefined;
    if (!oidc?.route || !CLIENT_AUTH_ROUTES.has(oidc.route)) return;
    const body = ctx.body as { error?: string } | undefined;
    if (ctx.status === 400 && body?.error === 'invalid_request' && grantTypeRefused(ctx as KoaContextWithOIDC)) {
      ctx.body = { error: 'unauthorized_client', error_description: `this client may not use the ${String(oidc.params?.grant_type)} grant type` };
    }
    if (ctx.status === 401 && !ctx.response.get('WWW-Authenticate')) {
      ctx.set('WWW-Authenticate', `Basic realm="${provider.issuer}", error="${body?.error ?? 'invalid_client'}"`);
    }
  });
}

/** Routes client-secret checks to the hashed secrets of the registry (constant time). */
export function installSecretVerification(provider: Provider, clients: ClientService): void {
  provider.Client.prototype.compareClientSecret = function compareClientSecret(this: { clientId: string }, actual: string) {
    return clients.verifySecret(this.clientId, actual);
  } as never;
}
