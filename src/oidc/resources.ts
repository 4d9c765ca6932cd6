import { errors, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import type { ClientService } from '../identity/clients.ts';
import type { ResourceService } from '../identity/resources.ts';
import type { RoleService } from '../identity/roles.ts';

export interface ResourceDeps {
  clients: ClientService;
  roles: RoleService;
  resources: ResourceService;
}

/**
 * RFC 8707 resource indicators backed by the resource-server registry. Every API gets
 * RFC 9068 JWT access tokens signed with the API's algorithm and carrying its TTL.
 */
export function resourceConfiguration(deps: ResourceDeps): Partial<Configuration> {
  return {
    features: {
      resourceIndicators: {
        enabled: true,
        defaultResource: async (ctx: KoaContextWithOIDC, client, oneOf) => {
          if (oneOf) return oneOf;
          return (client as unknown as { default_resource?: string }).default_resource;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: async (ctx, resourceIndicator, client): Promise<ResourceServer> => {
          const server = await deps.resources.byIdentifier(resourceIndicator);
          if (!server) throw new errors.InvalidTarget(`unknown resource: ${resourceIndicator}`);
          const scope = await allowedScopes(deps, ctx, client.clientId, server.scopes);
          return {
            scope: scope.join(' '),
            audience: server.identifier,
            accessTokenTTL: server.accessTokenTtl,
            accessTokenFormat: 'jwt',
            jwt: { sign: { alg: server.signingAlg } },
          };
        },
      },
    },
  };
}

/**
 * The scopes of `accepted` a token may carry. For client credentials: those the client's roles
 * permit. For user flows: those the client may request (its `scope` metadata, all when unset).
 */
async function allowedScopes(deps: ResourceDeps, ctx: KoaContextWithOIDC, clientId: string, accepted: string[]): Promise<string[]> {
  const record = await deps.clients.record(clientId);
  if (!record) return [];
  if (ctx.oidc.params?.grant_type === 'client_credentials') {
    const permitted = await deps.roles.permissionsOf(record.roles);
    return accepted.filter((scope) => permitted.has(scope));
  }
  const clientScopes = record.metadata.scope?.split(' ');
  return clientScopes ? accepted.filter((scope) => clientScopes.includes(scope)) : accepted;
}
