import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { AuditEvent } from '../audit/events.ts';
import { tokenErrorAnswered } from './overrides/index.ts';

/** What token auditing needs: the buffered writer's `record` (never awaited on the request path). */
export interface AuditSink {
  record(event: AuditEvent): void;
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
}

/**
 * Audits every token endpoint outcome: `token.issued` success with the token's reference,
 * audience and scope, or failure with the OAuth error. `record` only buffers (see
 * audit/writer.ts), so the token endpoint never waits on the audit table.
 */
export function installTokenAudit(provider: Provider, audit: AuditSink, fingerprint?: TokenFingerprint): void {
  provider.on('grant.success', (ctx: KoaContextWithOIDC) => {
    const { entities, params, client } = ctx.oidc;
    const token = (entities.ClientCredentials ?? entities.AccessToken) as IssuedToken | undefined;
    audit.record({
      type: 'token.issued',
      actor: client?.clientId,
      subject: token?.accountId ?? client?.clientId,
      outcome: 'success',
      ip: ctx.ip,
      details: {
        grant_type: params?.grant_type,
        ...tokenReference(token, fingerprint),
        aud: token?.resourceServer?.audience,
        scope: token?.scope,
      },
    });
  });
  provider.on('grant.error', (ctx: KoaContextWithOIDC, error: Error & { error?: string }) => {
    audit.record({
      type: 'token.issued',
      actor: ctx.oidc?.client?.clientId,
      outcome: 'failure',
      ip: ctx.ip,
      details: {
        grant_type: ctx.oidc?.params?.grant_type,
        // Reported as the client is answered (the body is rewritten after this event fires).
        error: tokenErrorAnswered(ctx, error.error) ?? error.name,
      },
    });
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
