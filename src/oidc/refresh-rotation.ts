import { errors, type Client, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';

type ResourceServerInfo = (ctx: KoaContextWithOIDC, resource: string, client: Client) => Promise<ResourceServer>;

/**
 * RFC 9700 §4.14.2: every refresh rotates the refresh token. oidc-provider consumes the old
 * token before it resolves the `resource` parameter, so a refresh refused with
 * `invalid_target` (RFC 8707 §2.2) would burn the token, and the retry would look like reuse
 * and revoke the grant. `rotateRefreshToken` runs before the consumption: the resource is
 * checked there, with the same rules (granted to the token, one value, known to the registry).
 */
export function refreshRotationConfiguration(resourceServerInfo: ResourceServerInfo): Partial<Configuration> {
  return {
    rotateRefreshToken: async (ctx) => {
      const refreshToken = ctx.oidc.entities.RefreshToken;
      if (!refreshToken) return true;
      // Without the parameter, the one resource the token was granted for is used (useGrantedResource).
      const resource: unknown = ctx.oidc.params?.resource ?? (typeof refreshToken.resource === 'string' ? refreshToken.resource : undefined);
      if (resource === undefined) return true;
      if (typeof resource !== 'string') {
        throw new errors.InvalidTarget('only a single resource indicator value must be requested/resolved during Access Token Request');
      }
      if (!refreshToken.resourceIndicators.has(resource)) throw new errors.InvalidTarget();
      await resourceServerInfo(ctx, resource, ctx.oidc.client!);
      return true;
    },
  };
}
