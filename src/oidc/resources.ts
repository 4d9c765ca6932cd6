import { errors, type Client, type Configuration, type KoaContextWithOIDC, type ResourceServer } from 'oidc-provider';
import { adminAudience } from '../identity/admin-roles.ts';
import { mayObtain, type ClientRecord, type ClientService } from '../identity/clients/index.ts';
import type { ResourceService } from '../identity/resources.ts';
import type { RoleService } from '../identity/roles.ts';
import { narrowRequestedScope, requestedScopes } from './overrides/index.ts';

export interface ResourceDeps {
  issuer: string;
  clients: ClientService;
  roles: RoleService;
  resources: ResourceService;
  /** Role names of a user account; without it a user holds no role and gets no API scope. */
  userRoles?: ((accountId: string) => Promise<string[]>) | undefined;
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
        defaultResource: async (ctx: KoaContextWithOIDC, client: Client, oneOf?: readonly string[]) => {
          const fallback = defaultResourceOf(client);
          if (oneOf) return fallback && oneOf.includes(fallback) ? fallback : oneOf;
          if (!fallback && isClientCredentials(ctx)) {
            // RFC 8707 §2: a missing resource is `invalid_target`. A client-credentials token
            // without an audience could only be an opaque token no API can verify offline.
            throw new errors.InvalidTarget('resource parameter is required (the client has no default resource)');
          }
          // A third-party sign-in that asks none of the default API's scopes is a sign-in only
          // (see thirdPartyNeedsApiScope): it gets no token for that API rather than an error.
          if (fallback && isUserAuthorization(ctx) && !(await asksScopeOf(deps, ctx, client.clientId, fallback))) return undefined;
          return fallback;
        },
        useGrantedResource: async () => true,
        getResourceServerInfo: (ctx, resourceIndicator, client) => resourceServerInfo(deps, ctx, resourceIndicator, client),
      },
    },
  };
}

/** The registry's answer for a resource: its scopes this client may get, audience, TTL and format. */
export async function resourceServerInfo(deps: ResourceDeps, ctx: KoaContextWithOIDC, resourceIndicator: string, client: Client): Promise<ResourceServer> {
  const server = await deps.resources.byIdentifier(resourceIndicator);
  if (!server) throw new errors.InvalidTarget(`unknown resource: ${resourceIndicator}`);
  // RFC 8707 §2, RFC 9700 §2.3: only the resources this client was allowed, at the
  // authorization, PAR and token endpoints alike; the admin API only to admin consoles.
  const record = await deps.clients.record(client.clientId);
  if (!record || !mayObtain(record, server.identifier, adminAudience(deps.issuer))) {
    throw new errors.InvalidTarget(`this client may not obtain tokens for ${resourceIndicator}`);
  }
  const allowed = await allowedScopes(deps, ctx, record, server.scopes, server.identifier);
  if (isClientCredentials(ctx)) applyScopeRule(ctx, allowed);
  if (!record.firstParty && isUserAuthorization(ctx) && userOf(ctx)) thirdPartyNeedsApiScope(ctx, server.identifier, allowed);
  return {
    scope: allowed.join(' '),
    audience: server.identifier,
    accessTokenTTL: server.accessTokenTtl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: server.signingAlg } },
  };
}

function defaultResourceOf(client: Client): string | undefined {
  const value = (client as unknown as { default_resource?: unknown }).default_resource;
  return typeof value === 'string' ? value : undefined;
}

/** The authorization endpoint, or its resume after login and consent (user flows, browser). */
function isUserAuthorization(ctx: KoaContextWithOIDC): boolean {
  return ctx.oidc?.route === 'authorization' || ctx.oidc?.route === 'resume';
}

/** Whether the request names a scope of the client's default resource (third-party clients only). */
async function asksScopeOf(deps: ResourceDeps, ctx: KoaContextWithOIDC, clientId: string, identifier: string): Promise<boolean> {
  const record = await deps.clients.record(clientId);
  if (!record || record.firstParty) return true;
  const server = await deps.resources.byIdentifier(identifier);
  return Boolean(server && requestedScopes(ctx)?.some((scope) => server.scopes.includes(scope)));
}

/**
 * RFC 9700 §2.3: a third-party client acts for the user at an API only within a scope the
 * user consented to. oidc-provider asks for consent only for missing scopes, so a token
 * without any API scope would be released silently once the user consented to `openid`:
 * such a request is refused (`invalid_scope`) once the user is known (after login; before it,
 * the user's roles, hence `allowed`, are not).
 */
function thirdPartyNeedsApiScope(ctx: KoaContextWithOIDC, identifier: string, allowed: readonly string[]): void {
  if (requestedScopes(ctx)?.some((scope) => allowed.includes(scope))) return;
  throw new errors.InvalidScope(`a third-party client gets a token for ${identifier} only with one of its scopes that the user may grant and consents to`, requestedScopes(ctx)?.join(' ') ?? '');
}

function isClientCredentials(ctx: KoaContextWithOIDC): boolean {
  return ctx.oidc?.route === 'token' && ctx.oidc.params?.grant_type === 'client_credentials';
}

/**
 * The scope rule for client credentials: granted = requested ∩ what the resource accepts ∩
 * what the client's roles permit. Anything else is dropped; when a scope was requested and
 * nothing survives, the request fails (RFC 6749 §5.2 `invalid_scope`). No `scope` parameter
 * means a token without `scope` (the `roles` claim still says who the caller is). An OIDC
 * scope such as `openid` is dropped like any other, see narrowRequestedScope.
 */
function applyScopeRule(ctx: KoaContextWithOIDC, allowed: readonly string[]): void {
  const requested = requestedScopes(ctx);
  if (!requested) return;
  const granted = requested.filter((scope) => allowed.includes(scope));
  if (!granted.length) {
    throw new errors.InvalidScope('none of the requested scopes is accepted by the resource and permitted by the client\'s roles', String(ctx.oidc.params?.scope));
  }
  narrowRequestedScope(ctx, granted);
}

/**
 * The scopes of `accepted` a token may carry: those the roles of the token's subject permit
 * (the client's for client credentials, the user's in user flows) and, in user flows, that the
 * client may request (its `scope` metadata, all when unset). The consent prompt and the token
 * both read this, so a scope the user's roles do not permit is neither offered nor issued.
 * Roles per API: only global roles and roles scoped to this API (`audience`) permit anything.
 */
async function allowedScopes(deps: ResourceDeps, ctx: KoaContextWithOIDC, record: ClientRecord, accepted: string[], audience: string): Promise<string[]> {
  if (ctx.oidc.params?.grant_type === 'client_credentials') {
    const permitted = await deps.roles.permissionsOf(record.roles, audience);
    return accepted.filter((scope) => permitted.has(scope));
  }
  const clientScopes = record.metadata.scope?.split(' ');
  const forClient = clientScopes ? accepted.filter((scope) => clientScopes.includes(scope)) : accepted;
  const accountId = userOf(ctx);
  // No user yet (the authorization request before sign-in, a pushed request): nothing is issued
  // on this pass, and the request is resolved again for the signed-in user on resume.
  if (!accountId || !deps.userRoles) return [];
  const permitted = await deps.roles.permissionsOf(await deps.userRoles(accountId), audience);
  return forClient.filter((scope) => permitted.has(scope));
}

/**
 * The user a user-flow request acts for. At the token endpoint oidc-provider has loaded the
 * code's or refresh token's account before it asks for the resource server; at the
 * authorization endpoint (and on resume, after the login result is applied) it is the
 * session's account.
 */
function userOf(ctx: KoaContextWithOIDC): string | undefined {
  const oidc = ctx.oidc as { account?: { accountId?: unknown }; session?: { accountId?: unknown } } | undefined;
  const id = oidc?.account?.accountId ?? oidc?.session?.accountId;
  return typeof id === 'string' ? id : undefined;
}
