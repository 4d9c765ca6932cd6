import { errors as joseErrors, type JWK } from 'jose';
import type { Confirmation } from '../verify/binding.ts';
import type Koa from 'koa';
import { ADMIN_READ_ROLE, ADMIN_ROLE, adminAudience } from '../identity/admin-roles.ts';
import type { ClientService } from '../identity/clients/index.ts';
import type { UserService } from '../identity/users.ts';
import type { SigningKeyRecord } from '../keys/store.ts';
import type { ProviderHolder } from '../oidc/holder.ts';
import { AccessTokenVerifier } from '../oidc/jwt/access-token.ts';
import type { RevocationList } from '../oidc/jwt/revocation-list.ts';
import type { ChangeFeed } from '../store/changes.ts';
import { bindingRefusal, type AdminBindingDeps } from './binding.ts';
import { CurrentUsers } from './current-users.ts';
import { Problem } from './problem.ts';

/** Who is calling the admin API, from their access token. */
export interface Principal {
  /** `sub` of the token: a client_id for client credentials, a user id otherwise. */
  actor: string;
  clientId: string | undefined;
  roles: string[];
  readOnly: boolean;
}

export interface AdminAuthDeps {
  issuer: string;
  keys: { list(): Promise<SigningKeyRecord[]> };
  provider: ProviderHolder;
  changes: ChangeFeed;
  /** The same list the token endpoints write to (built once in app.ts). */
  revocations: Pick<RevocationList, 'isRevoked'>;
  clients: ClientService;
  users: Pick<UserService, 'account' | 'rolesOf'>;
  now: () => Date;
  /** The request's client certificate, for certificate-bound tokens (RFC 8705 §3). */
  clientCertificate?: AdminBindingDeps['clientCertificate'];
}

const REALM = 'keyward-admin';
/** A token naming an unknown kid reloads the key set at most this often (it may be brand new). */
const RELOAD_AFTER_MISS_MS = 5_000;

function unauthorized(detail: string, presented: boolean, scheme: 'Bearer' | 'DPoP' = 'Bearer'): Problem {
  // RFC 9449 §7.1: a DPoP-bound token is challenged with the DPoP scheme.
  const challenge = presented
    ? `${scheme} realm="${REALM}", error="invalid_token", error_description="${detail.replace(/"/g, "'")}"`
    : `${scheme} realm="${REALM}"`;
  return new Problem(401, detail, undefined, { 'WWW-Authenticate': challenge });
}

/**
 * Verifies Keyward's own RFC 9068 access tokens for the admin audience. The verification key
 * set is the store's published keys, reloaded whenever the provider is rebuilt or another
 * instance announces new keys, so rotation needs no restart.
 */
export class AdminAuthenticator {
  #verifier: Promise<AccessTokenVerifier> | undefined;
  #loadedAt = 0;
  readonly #users: CurrentUsers;

  constructor(private readonly deps: AdminAuthDeps) {
    this.#users = new CurrentUsers(deps.users, deps.changes);
    deps.provider.onSwap(() => this.#invalidate());
    deps.changes.subscribe((change) => { if (change.kind === 'keys') this.#invalidate(); });
  }

  /** Resolves the caller or throws a 401/403 problem; `write` asks for the `admin` role. */
  async authenticate(ctx: Koa.Context, write: boolean): Promise<Principal> {
    const header = ctx.get('authorization');
    const match = /^(Bearer|DPoP) +([A-Za-z0-9._~+/-]+=*) *$/i.exec(header);
    if (!header) throw unauthorized('an access token for the admin API is required', false);
    if (!match) throw unauthorized('the Authorization header must be "Bearer <token>" or "DPoP <token>"', true);
    const payload = await this.#verify(match[2]!);
    const refused = await bindingRefusal(ctx, match[2]!, match[1]!.toLowerCase() === 'dpop' ? 'dpop' : 'bearer', payload.cnf as Confirmation | undefined, this.deps);
    if (refused) throw unauthorized(refused, true, (payload.cnf as Confirmation | undefined)?.jkt !== undefined ? 'DPoP' : 'Bearer');

    // RFC 7009: a JWT revoked at the revocation endpoint is refused for the rest of its life.
    if (typeof payload.jti === 'string' && await this.deps.revocations.isRevoked(payload.jti)) {
      throw unauthorized('the access token has been revoked', true);
    }
    const clientId = typeof payload.client_id === 'string' ? payload.client_id : undefined;
    const sub = typeof payload.sub === 'string' ? payload.sub : undefined;
    const client = clientId ? await this.deps.clients.record(clientId) : undefined;
    if (!client || client.disabled) throw unauthorized('the client of this token is disabled or deleted', true);
    // Issue 10, F1: only a client an admin designated as an admin console may act here, even
    // with a token minted before the designation was withdrawn.
    if (client.metadata.admin_console !== true) throw unauthorized('the client of this token is not an admin console', true);
    // Issue 10, F9: the token's roles count only while its subject still holds them.
    let current: string[];
    if (sub === clientId) {
      current = client.roles;
    } else {
      const user = sub ? await this.#users.get(sub) : undefined;
      if (!user) throw unauthorized('the user of this token is disabled or deleted', true);
      current = user.roles;
    }
    const claimed = Array.isArray(payload.roles) ? payload.roles.filter((r): r is string => typeof r === 'string') : [];
    const roles = claimed.filter((role) => current.includes(role));
    const admin = roles.includes(ADMIN_ROLE);
    if (!admin && !(roles.includes(ADMIN_READ_ROLE) && !write)) {
      const needed = write ? `role ${ADMIN_ROLE}` : `role ${ADMIN_ROLE} or ${ADMIN_READ_ROLE}`;
      throw new Problem(403, `this operation requires ${needed}`, undefined, {
        'WWW-Authenticate': `Bearer realm="${REALM}", error="insufficient_scope"`,
      });
    }
    return { actor: String(payload.sub ?? clientId ?? ''), clientId, roles, readOnly: !admin };
  }

  async #verify(token: string) {
    const checks = { audience: adminAudience(this.deps.issuer), requiredClaims: ['iat', 'sub'] };
    try {
      try {
        return await (await this.#currentVerifier()).verifyOrThrow(token, checks);
      } catch (error) {
        if (!(error instanceof joseErrors.JWKSNoMatchingKey) || Date.now() - this.#loadedAt < RELOAD_AFTER_MISS_MS) throw error;
        this.#invalidate();
        return await (await this.#currentVerifier()).verifyOrThrow(token, checks);
      }
    } catch (error) {
      if (error instanceof joseErrors.JWTExpired) throw unauthorized('the access token has expired', true);
      if (error instanceof joseErrors.JWTClaimValidationFailed) throw unauthorized(`the access token is not valid here (${error.claim})`, true);
      if (error instanceof joseErrors.JOSEError || error instanceof TypeError) throw unauthorized('the access token is invalid', true);
      throw error;
    }
  }

  /** The shared access-token verifier over every published (not retired) key in the store. */
  #currentVerifier(): Promise<AccessTokenVerifier> {
    if (!this.#verifier) {
      this.#loadedAt = Date.now();
      const loading = this.deps.keys.list().then((keys) => new AccessTokenVerifier(
        this.deps.issuer,
        keys.filter((k) => k.state !== 'retired').map((k): JWK => ({ ...k.publicJwk, kid: k.kid, alg: k.alg, use: 'sig' })),
        this.deps.now,
      ));
      this.#verifier = loading;
      loading.catch(() => { if (this.#verifier === loading) this.#verifier = undefined; });
    }
    return this.#verifier;
  }

  #invalidate(): void {
    this.#verifier = undefined;
  }
}
