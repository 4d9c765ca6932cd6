import type { Configuration } from 'oidc-provider';
import type { ClientService } from '../identity/clients/index.ts';

/** What the visibility rule looks at in a token, JWT or opaque. */
export interface TokenParties {
  /** The client the token was issued to. */
  clientId: string;
  /** The APIs the token is addressed to (none for a refresh token or a userinfo-only token). */
  audiences: readonly string[];
}

/**
 * Who may introspect or revoke a token: the client it was issued to, and an API's own client
 * (`resource_server`) for tokens addressed to that API. Everyone else learns nothing.
 */
export async function maySee(clients: ClientService, requester: string, token: TokenParties): Promise<boolean> {
  if (token.clientId === requester) return true;
  const api = (await clients.record(requester))?.resourceServer;
  return !!api && token.audiences.includes(api);
}

/**
 * RFC 7662 introspection of the tokens oidc-provider stores (opaque access and refresh tokens)
 * under the same rule as Keyward's JWTs (jwt/endpoints.ts). oidc-provider's default
 * `allowedPolicy` answers any confidential client about any token; RFC 7662 §4 leaves the
 * decision to the server, and a token's owner or its API are the only parties with a need.
 */
export function introspectionConfiguration(clients: ClientService): Partial<Configuration> {
  return {
    features: {
      introspection: {
        enabled: true,
        allowedPolicy: (_ctx, client, token) => maySee(clients, client.clientId, {
          clientId: token.clientId ?? '',
          audiences: token.kind === 'RefreshToken' ? [] : audiencesOfStored(token.aud),
        }),
      },
    },
  };
}

function audiencesOfStored(aud: unknown): string[] {
  if (typeof aud === 'string') return [aud];
  return Array.isArray(aud) ? aud.filter((a): a is string => typeof a === 'string') : [];
}
