import type { Adapter, AdapterPayload, Configuration, Provider } from 'oidc-provider';
import { isConfidential, type ClientService } from '../identity/clients.ts';

/**
 * oidc-provider requires a `client_secret` in the metadata of secret-authenticated clients.
 * Keyward stores only HMACs, so the metadata carries this marker and authentication goes
 * through `compareClientSecret` below; HS* algorithms and client_secret_jwt, which would use
 * the marker as key material, are disabled (see policy.ts).
 */
const SECRET_PLACEHOLDER = 'keyward:hashed-secret';

/** The "Client" model of oidc-provider, read from Keyward's client registry (cached). */
export class ClientAdapter implements Adapter {
  constructor(private readonly clients: ClientService) {}

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
      ...(metadata.scope ? { scope: metadata.scope } : {}),
      ...(metadata.default_resource ? { default_resource: metadata.default_resource } : {}),
    } as AdapterPayload;
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
    clientAuthMethods: ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'],
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

/** Routes client-secret checks to the hashed secrets of the registry (constant time). */
export function installSecretVerification(provider: Provider, clients: ClientService): void {
  provider.Client.prototype.compareClientSecret = function compareClientSecret(this: { clientId: string }, actual: string) {
    return clients.verifySecret(this.clientId, actual);
  } as never;
}
