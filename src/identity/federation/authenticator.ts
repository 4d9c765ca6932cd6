import { createHash } from 'node:crypto';
import type { FederationJtis } from '../../store/federation-jti.ts';
import type { ClientRecord } from '../clients/index.ts';
import type { FederatedCredentialService } from './service.ts';
import type { Failure, FederatedTokenVerifier, Match } from './verifier.ts';

/** What authenticating a client needs from the client registry. */
export interface ClientLookup {
  record(clientId: string): Promise<ClientRecord | undefined>;
}

/** Why a federated client authentication failed: a sentence safe to answer (never the token). */
export class FederationRefused extends Error {
  override name = 'FederationRefused';
  constructor(message: string, readonly failures: Failure[] = []) {
    super(message);
  }
}

/** The successful authentication: which credential accepted which external identity. */
export interface FederatedAuthentication {
  clientId: string;
  credentialId: string;
  /** The external token's `iss` and `sub` (for the audit trail). */
  iss: string;
  sub: string;
  jti: string | undefined;
}

/** The dry run's answer (POST /admin/v1/federated-credentials/test). */
export interface DryRun {
  matched: { client_id: string; credential_id: string } | null;
  reasons: Failure[];
}

/**
 * Client authentication with an external token (token_endpoint_auth_method `federated_jwt`),
 * and its dry run. The first of the client's credentials that accepts the token wins; a `jti`
 * is then claimed in the store until the token expires, so a replay is refused on every
 * instance (RFC 7523 §3 item 7); a token without `jti` (Kubernetes) is accepted for its
 * lifetime, as DESIGN.md says.
 */
export class FederatedAuthenticator {
  constructor(
    private readonly clients: ClientLookup,
    private readonly credentials: FederatedCredentialService,
    private readonly verifier: FederatedTokenVerifier,
    private readonly jtis: FederationJtis,
  ) {}

  /** True when `clientId` names an enabled client that authenticates with federated_jwt. */
  async isFederated(clientId: string): Promise<boolean> {
    const record = await this.clients.record(clientId);
    return !!record && !record.disabled && record.metadata.token_endpoint_auth_method === 'federated_jwt';
  }

  async authenticate(clientId: string, token: string): Promise<FederatedAuthentication> {
    const candidates = await this.credentials.forClient(clientId);
    if (!candidates.length) throw new FederationRefused('the client has no federated credentials');
    const { match, failures } = await this.verifier.verify(token, candidates);
    if (!match) throw new FederationRefused(summary(failures), failures);
    const { claims } = match;
    if (typeof claims.jti === 'string') {
      const fresh = await this.jtis.claim(jtiKey(claims.iss, claims.jti), new Date((claims.exp as number) * 1000 + 60_000));
      if (!fresh) throw new FederationRefused('the token\'s jti was already used (RFC 7523 §3: a jti is used once)');
    }
    return authentication(match);
  }

  /** Which credential of any client would accept `token`, or why each does not; consumes no jti. */
  async dryRun(token: string): Promise<DryRun> {
    const all = await this.credentials.all();
    const candidates = [];
    for (const credential of all) {
      if (await this.isFederated(credential.clientId)) candidates.push(credential);
    }
    const { match, failures } = await this.verifier.verify(token, candidates);
    return {
      matched: match ? { client_id: match.credential.clientId, credential_id: match.credential.id } : null,
      reasons: failures,
    };
  }
}

function authentication(match: Match): FederatedAuthentication {
  return {
    clientId: match.credential.clientId,
    credentialId: match.credential.id,
    iss: match.claims.iss,
    sub: match.claims.sub,
    jti: typeof match.claims.jti === 'string' ? match.claims.jti : undefined,
  };
}

/** One jti per issuer, of bounded size whatever the token carries. */
function jtiKey(iss: string, jti: string): string {
  return createHash('sha256').update(iss).update('\n').update(jti).digest('base64url');
}

/** The error_description: the one reason when there is one candidate, else each credential's. */
function summary(failures: Failure[]): string {
  if (failures.length === 1) return `federated credential ${failures[0]!.credential_id}: ${failures[0]!.detail}`;
  return `no federated credential accepted the token: ${failures.map((f) => `${f.credential_id}: ${f.detail}`).join('; ')}`.slice(0, 1000);
}
