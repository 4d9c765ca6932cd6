import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { AuditEvent } from '../audit/events.ts';
import { GRANT_TYPES } from '../identity/clients/metadata.ts';
import { federatedAuthenticationOf, tokenErrorAnswered } from './overrides/index.ts';

/** What token auditing needs: the buffered writer (never awaited on the request path). */
export interface AuditSink {
  record(event: AuditEvent): void;
  /** For failures an unauthenticated caller can repeat at will: repeats per key are summarized. */
  recordRepeatable(event: AuditEvent, key: string): void;
}

/** A keyed one-way digest of a token value (HMAC under a KEK-derived key, see app.ts). */
export type TokenFingerprint = (value: string) => string;

interface IssuedToken {
  jti?: string;
  /** oidc-provider's `opaque` or `jwt` (set when the token id is generated). */
  format?: string;
  scope?: string;
  accountId?: string;
  resourceServer?: { audience?: string };
  /** RFC 9449 / RFC 8705: the key the token is bound to, if any. */
  jkt?: string;
  'x5t#S256'?: string;
}

/**
 * The grant type as audited: one this server supports, else `other`. The parameter is the
 * caller's to choose; a 55,000-character `grant_type` must not end up in a row kept 90 days.
 */
export function auditedGrantType(value: unknown): string | undefined {
  if (value === undefined) return undefined;
  return (GRANT_TYPES as readonly unknown[]).includes(value) ? value as string : 'other';
}

/**
 * The client id a caller tried, from the body or HTTP Basic (RFC 6749 §2.3.1: URL-encoded, then
 * base64), cut to 128 characters, the longest id there is (identity/ids.ts).
 */
function attemptedClientId(ctx: KoaContextWithOIDC): string | undefined {
  const param = ctx.oidc?.params?.client_id;
  if (typeof param === 'string') return param.slice(0, 128);
  const basic = /^basic\s+(\S+)/i.exec(ctx.get('authorization'));
  if (!basic) return undefined;
  const id = Buffer.from(basic[1]!, 'base64').toString('utf8').split(':')[0]!.slice(0, 384);
  try {
    return decodeURIComponent(id.replace(/\+/g, '%20')).slice(0, 128);
  } catch {
    return id.slice(0, 128);
  }
}

/**
 * Audits every token endpoint outcome: `token.issued` success with the token's reference,
 * audience
 * and scope, or failure with the OAuth error. `record` only buffers (see audit/writer.ts), so
 * the token endpoint never waits on the audit table. A failed client authentication comes from
 * a caller nobody knows yet: it is recorded once per client id and address per minute, with
 * the number of repeats.
 */
export function installTokenAudit(provider: Provider, audit: AuditSink, fingerprint?: TokenFingerprint): void {
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const { entities, params, client } = ctx.oidc;
    const token = (entities.ClientCredentials ?? entities.AccessToken) as IssuedToken | undefined;
    const federated = federatedAuthenticationOf(ctx);
    audit.record({
      type: 'token.issued',
      actor: client?.clientId,
      subject: token?.accountId ?? client?.clientId,
      outcome: 'success',
      ip: ctx.ip,
      details: {
        grant_type: auditedGrantType(params?.grant_type),
        ...tokenReference(token, fingerprint),
        aud: token?.resourceServer?.audience,
        scope: token?.scope,
        // The external identity that stood in for a secret (federated_jwt).
        ...(federated ? { federated_credential_id: federated.credentialId, federated_iss: federated.iss, federated_sub: federated.sub } : {}),
        ...(token?.jkt ? { bound: 'dpop' } : token?.['x5t#S256'] ? { bound: 'mtls' } : {}),
      },
    });
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: Error & { error?: string }) => {
    // Reported as the client is answered (the body is rewritten after this event fires).
    const answered = tokenErrorAnswered(ctx, error.error) ?? error.name;
    // RFC 8628 §3.5: a device polls every few seconds until its person approves; each pending
    // poll is the protocol working, not an event (the outcome is audited when it comes).
    if (answered === 'authorization_pending') return;
    const client = ctx.oidc?.client;
    const event: AuditEvent = {
      type: 'token.issued',
      actor: client?.clientId,
      outcome: 'failure',
      ip: ctx.ip,
      details: { grant_type: auditedGrantType(ctx.oidc?.params?.grant_type), error: answered },
    };
    if (answered !== 'invalid_client') return audit.record(event);
    // An unknown client id names nobody: every unknown id from one address shares one summary.
    const attempted = attemptedClientId(ctx);
    const key = client ? `${client.clientId}|${ctx.ip}` : `?|${ctx.ip}`;
    audit.recordRepeatable({ ...event, details: { ...event.details, ...(client ? {} : { client_id: attempted, client_known: false }) } }, key);
  });
}

/**
 * How the audit trail names a token without holding it. A JWT's `jti` is only an identifier;
 * an opaque token's `jti` IS the bearer value (oidc-provider's opaque format), which anyone
 * reading the trail could replay at /me, so only its keyed digest is kept: the operator can
 * still match a token in hand against the trail, a reader of the trail cannot replay one.
 * Without a fingerprint nothing about an opaque token is recorded.
 */
function tokenReference(token: IssuedToken | undefined, fingerprint: TokenFingerprint | undefined): { jti?: string; token_hmac?: string } {
  if (!token?.jti) return {};
  if (token.format === 'jwt') return { jti: token.jti };
  return fingerprint ? { token_hmac: fingerprint(token.jti) } : {};
}
