import { errors, type KoaContextWithOIDC, type Provider, type ResourceServer } from 'oidc-provider';
import type { AuditEvent } from '../../audit/events.ts';
import { adminAudience } from '../../identity/admin-roles.ts';
import { TOKEN_EXCHANGE, type ClientService } from '../../identity/clients/index.ts';
import type { ResourceServerRecord, ResourceService } from '../../identity/resources.ts';
import type { RoleService } from '../../identity/roles.ts';
import { audiencesOf, type AccessTokenClaims, type AccessTokenVerifier } from '../jwt/access-token.ts';
import type { RevocationList } from '../jwt/revocation-list.ts';
import { maySee } from '../token-visibility.ts';
import { setExchangedClaims } from './token-exchange-claims.ts';

/** RFC 8693 §3: the only token type Keyward exchanges and issues. */
export const ACCESS_TOKEN_TYPE = 'urn:ietf:params:oauth:token-type:access_token';

/** What an exchanged token derives from (src/store/token-exchanges.ts keeps it). */
export interface ExchangeLink {
  jti: string;
  /** Every token it derives from, the direct subject token first. */
  subjectJtis: string[];
  /** The user's grant the chain's first token came from; absent for a client's own token. */
  grantId?: string | undefined;
  expiresAt: Date;
}

/** The store side of exchange links (src/store/token-exchanges.ts). */
export interface ExchangeLinks {
  record(link: ExchangeLink): Promise<void>;
  find(jti: string): Promise<ExchangeLink | undefined>;
  anyRevoked(jtis: readonly string[]): Promise<boolean>;
  grantLive(grantId: string, now: Date): Promise<boolean>;
}

export interface TokenExchangeDeps {
  issuer: string;
  verifier: AccessTokenVerifier;
  revocations: RevocationList;
  links: ExchangeLinks;
  clients: ClientService;
  roles: Pick<RoleService, 'rolesFor' | 'permissionsOf'>;
  resources: Pick<ResourceService, 'byIdentifier'>;
  /** Role names of a user account. */
  userRoles?: ((accountId: string) => Promise<string[]>) | undefined;
  /** Whether the user exists and is enabled. */
  accountExists?: ((accountId: string) => Promise<boolean>) | undefined;
  now: () => Date;
  audit?: { record(event: AuditEvent): void } | undefined;
}

const PARAMETERS = ['subject_token', 'subject_token_type', 'actor_token', 'actor_token_type', 'resource', 'audience', 'scope', 'requested_token_type'];

/** Registers the RFC 8693 grant through oidc-provider's supported extension point. */
export function registerTokenExchange(provider: Provider, deps: TokenExchangeDeps): void {
  provider.registerGrantType(TOKEN_EXCHANGE, (ctx) => exchange(provider, deps, ctx), PARAMETERS, ['resource', 'audience']);
}

function values(value: unknown): string[] {
  if (value === undefined) return [];
  return (Array.isArray(value) ? value : [value]).filter((v): v is string => typeof v === 'string' && v !== '');
}

function scopeList(value: unknown): string[] {
  return typeof value === 'string' ? [...new Set(value.split(' ').filter(Boolean))] : [];
}

/** RFC 8693 §2.1: one target API, named by `resource` (RFC 8707) or `audience` (its identifier). */
function requestedTarget(params: Record<string, unknown>): string {
  const targets = [...new Set([...values(params.resource), ...values(params.audience)])];
  if (!targets.length) throw new errors.InvalidTarget('name the target API with resource or audience');
  if (targets.length > 1) throw new errors.InvalidTarget('exactly one target API (resource or audience) may be requested');
  return targets[0]!;
}

/** §2.2.2 invalid_request for a subject token that is malformed, forged, foreign or expired. */
async function verifySubject(deps: TokenExchangeDeps, token: string): Promise<AccessTokenClaims> {
  try {
    return await deps.verifier.verifyOrThrow(token);
  } catch {
    throw new errors.InvalidRequest('subject_token is invalid or expired');
  }
}

async function exchange(provider: Provider, deps: TokenExchangeDeps, ctx: KoaContextWithOIDC): Promise<void> {
  const { client } = ctx.oidc;
  const params = ctx.oidc.params as Record<string, unknown>;
  if (!client) throw new errors.InvalidClient('client authentication is required');
  // RFC 8693 §2.1: a confidential client only (shape rules refuse `none` too).
  if (client.clientAuthMethod === 'none') throw new errors.InvalidClient('token exchange requires an authenticating client');

  if (params.actor_token !== undefined || params.actor_token_type !== undefined) {
    throw new errors.InvalidRequest('actor_token is not supported: the authenticated client is the actor (act.sub)');
  }
  if (typeof params.subject_token !== 'string' || !params.subject_token) throw new errors.InvalidRequest('missing required parameter subject_token');
  if (typeof params.subject_token_type !== 'string' || !params.subject_token_type) throw new errors.InvalidRequest('missing required parameter subject_token_type');
  if (params.subject_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported subject_token_type; only ${ACCESS_TOKEN_TYPE} is accepted`);
  }
  if (params.requested_token_type !== undefined && params.requested_token_type !== ACCESS_TOKEN_TYPE) {
    throw new errors.InvalidRequest(`unsupported requested_token_type; only ${ACCESS_TOKEN_TYPE} is issued`);
  }

  const server = await allowedTarget(deps, client.clientId, requestedTarget(params));
  const subject = await verifySubject(deps, params.subject_token);
  const audiences = audiencesOf(subject);
  // The token must have been issued to this client or sent to the API this client is.
  if (!(await maySee(deps.clients, client.clientId, { clientId: subject.client_id, audiences }))) {
    throw new errors.InvalidRequest('subject_token was neither issued to this client nor addressed to its API');
  }
  const link = await deps.links.find(subject.jti);
  const subjectJtis = [subject.jti, ...(link?.subjectJtis ?? [])];
  const isUser = link ? Boolean(link.grantId) : subject.sub !== subject.client_id;
  const grantId = link ? link.grantId : grantOf(subject, isUser);
  const now = deps.now();
  if (await deps.links.anyRevoked(subjectJtis)) throw new errors.InvalidRequest('subject_token has been revoked');
  if (grantId && !(await deps.links.grantLive(grantId, now))) {
    throw new errors.InvalidRequest('subject_token has been revoked (its grant is gone)');
  }
  const sub = typeof subject.sub === 'string' ? subject.sub : subject.client_id;
  const heldRoles = await currentRoles(deps, sub, isUser);

  const roles = await deps.roles.rolesFor(heldRoles, server.identifier);
  const permitted = await deps.roles.permissionsOf(heldRoles, server.identifier);
  const available = scopeList(subject.scope).filter((scope) => server.scopes.includes(scope) && permitted.has(scope));
  const requested = scopeList(params.scope);
  const beyond = requested.filter((scope) => !available.includes(scope));
  if (beyond.length) {
    throw new errors.InvalidScope(`not in the subject token's scope, accepted by ${server.identifier} and permitted by the roles: ${beyond.join(' ')}`, beyond.join(' '));
  }
  const granted = requested.length ? requested : available;

  const remaining = subject.exp - Math.floor(now.getTime() / 1000);
  if (remaining <= 0) throw new errors.InvalidRequest('subject_token is invalid or expired');
  const ttl = Math.min(server.accessTokenTtl, remaining);
  const act = { sub: client.clientId, ...(subject.act && typeof subject.act === 'object' ? { act: subject.act } : {}) };

  const resourceServer: ResourceServer & { identifier(): string; scopes: Set<string> } = {
    audience: server.identifier,
    scope: server.scopes.join(' '),
    scopes: new Set(server.scopes),
    accessTokenTTL: ttl,
    accessTokenFormat: 'jwt',
    jwt: { sign: { alg: server.signingAlg } },
    identifier: () => server.identifier,
  };
  // No grant of its own (oidc-provider's types ask for one; a JWT never carries it): the link
  // recorded below ties the token to its chain instead.
  const init = {
    accountId: sub,
    client,
    gty: TOKEN_EXCHANGE,
    expiresIn: ttl,
    resourceServer,
    ...(granted.length ? { scope: granted.join(' ') } : {}),
  };
  const token = new provider.AccessToken(init as unknown as ConstructorParameters<typeof provider.AccessToken>[0]);
  // The subject token carried `roles` only if its client was entitled to them (claims.ts): so does this one.
  setExchangedClaims(token, { act, ...(Array.isArray(subject.roles) ? { roles } : {}) });
  ctx.oidc.entity('AccessToken', token);
  const value = await token.save();
  await deps.links.record({ jti: token.jti, subjectJtis, grantId, expiresAt: new Date((now.getTime() / 1000 + ttl) * 1000) });

  deps.audit?.record({
    type: 'token.exchanged',
    actor: client.clientId,
    subject: sub,
    outcome: 'success',
    ip: ctx.ip,
    details: { subject_jti: subject.jti, jti: token.jti, aud: server.identifier, scope: granted.join(' ') || undefined, chain: subjectJtis.length },
  });

  ctx.body = {
    access_token: value,
    issued_token_type: ACCESS_TOKEN_TYPE,
    token_type: 'Bearer',
    expires_in: ttl,
    ...(granted.length ? { scope: granted.join(' ') } : {}),
  };
}

/** §2.2.2 invalid_target: an unknown API, the admin API, or one not in the client's `token_exchange_audiences`. */
async function allowedTarget(deps: TokenExchangeDeps, clientId: string, identifier: string): Promise<ResourceServerRecord> {
  const record = await deps.clients.record(clientId);
  const allowed = record?.metadata.token_exchange_audiences ?? [];
  if (identifier === adminAudience(deps.issuer) || !allowed.includes(identifier)) {
    throw new errors.InvalidTarget(`this client may not exchange tokens for ${identifier}`);
  }
  const server = await deps.resources.byIdentifier(identifier);
  if (!server) throw new errors.InvalidTarget(`unknown resource: ${identifier}`);
  return server;
}

/**
 * The grant a user's token (not from an exchange; client credentials have sub = client_id)
 * was issued under, from its `grant_id` claim (claims.ts). A user token without one cannot be
 * tied to its grant, so revoking the grant could not reach what it is exchanged for: refused.
 */
function grantOf(subject: AccessTokenClaims, isUser: boolean): string | undefined {
  if (!isUser) return undefined;
  if (typeof subject.grant_id !== 'string' || !subject.grant_id) throw new errors.InvalidRequest('subject_token carries no grant_id; obtain a new access token');
  return subject.grant_id;
}

/**
 * The subject's roles as the store holds them now, not as the subject token froze them: a
 * role removed since is gone from the exchanged token. A user who no longer exists or was
 * disabled cannot be acted for.
 */
async function currentRoles(deps: TokenExchangeDeps, sub: string, isUser: boolean): Promise<string[]> {
  if (isUser) {
    if (deps.accountExists && !(await deps.accountExists(sub))) throw new errors.InvalidRequest('the subject of subject_token no longer exists or is disabled');
    return deps.userRoles ? deps.userRoles(sub) : [];
  }
  const client = await deps.clients.record(sub);
  if (!client || client.disabled) throw new errors.InvalidRequest('the subject of subject_token no longer exists or is disabled');
  return client.roles;
}

/**
 * Whether an exchanged token is dead through its chain: a token it derives from was revoked,
 * or the user's grant at its root is gone. False for a token that was not exchanged.
 */
export async function revokedThroughChain(links: ExchangeLinks, token: { jti: string; act?: unknown }, now: Date): Promise<boolean> {
  // Every token this grant mints carries `act` (RFC 8693 §4.1), and only those have a link:
  // any other token needs no lookup.
  if (token.act === undefined) return false;
  const link = await links.find(token.jti);
  if (!link) return false;
  if (await links.anyRevoked(link.subjectJtis)) return true;
  return link.grantId ? !(await links.grantLive(link.grantId, now)) : false;
}
