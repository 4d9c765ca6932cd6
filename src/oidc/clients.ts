import type { Adapter, AdapterPayload, Configuration } from 'oidc-provider';
import { AUTH_METHODS, SUBJECT_PROPERTIES, isConfidential, type ClientMetadata, type ClientService } from '../identity/clients/index.ts';
import { SECRET_PLACEHOLDER } from './overrides/index.ts';

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
    /** The public half of overrides/federated-jwt.ts's InternalAssertionKey; without it federated clients do not exist. */
    private readonly federatedJwks?: { keys: object[] },
  ) {}

  async find(clientId: string): Promise<AdapterPayload | undefined> {
    const record = await this.clients.record(clientId);
    if (!record || record.disabled) return undefined;
    const { metadata } = record;
    const usesCode = metadata.grant_types.includes('authorization_code');
    const federated = metadata.token_endpoint_auth_method === 'federated_jwt';
    if (federated && !this.federatedJwks) return undefined;
    return {
      client_id: record.clientId,
      client_name: record.name,
      grant_types: metadata.grant_types,
      response_types: usesCode ? ['code'] : [],
      redirect_uris: metadata.redirect_uris,
      post_logout_redirect_uris: metadata.post_logout_redirect_uris,
      token_endpoint_auth_method: metadata.token_endpoint_auth_method === 'federated_jwt' ? 'private_key_jwt' : metadata.token_endpoint_auth_method,
      ...(isConfidential(metadata.token_endpoint_auth_method) ? { client_secret: SECRET_PLACEHOLDER } : {}),
      ...(metadata.jwks ? { jwks: metadata.jwks } : {}),
      ...(metadata.jwks_uri ? { jwks_uri: metadata.jwks_uri } : {}),
      // oidc-provider sees a private_key_jwt client whose only key is this process's own
      // (overrides/federated-jwt.ts swaps a verified external token for an assertion of it).
      ...(federated ? { token_endpoint_auth_signing_alg: 'ES256', jwks: this.federatedJwks } : {}),
      ...this.#oidcScope(metadata.scope),
      ...(metadata.default_resource ? { default_resource: metadata.default_resource } : {}),
      ...boundMetadata(metadata),
    };
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

/** RFC 8705 / RFC 9449 metadata, under the names oidc-provider reads. */
function boundMetadata(metadata: ClientMetadata): AdapterPayload {
  const out: AdapterPayload = {};
  for (const property of SUBJECT_PROPERTIES) if (metadata[property]) out[property] = metadata[property];
  if (metadata.tls_client_certificate_bound_access_tokens) out.tls_client_certificate_bound_access_tokens = true;
  if (metadata.dpop_bound_access_tokens) out.dpop_bound_access_tokens = true;
  return out;
}

export function clientConfiguration(): Partial<Configuration> {
  return {
    // federated_jwt is presented to oidc-provider as private_key_jwt (see ClientAdapter).
    clientAuthMethods: AUTH_METHODS.filter((method) => method !== 'federated_jwt'),
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
