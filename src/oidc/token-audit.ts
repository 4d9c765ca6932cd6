import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { AuditEvent } from '../audit/events.ts';
import { tokenErrorAnswered } from './overrides/index.ts';

/** What token auditing needs: the buffered writer's `record` (never awaited on the request path). */
export interface AuditSink {
  record(event: AuditEvent): void;
}

interface IssuedToken {
  jti?: string;
  scope?: string;
  accountId?: string;
  resourceServer?: { audience?: string };
}

/**
 * Audits every token endpoint outcome: `token.issued` success with the token's jti, audience
 * and scope, or failure with the OAuth error. `record` only buffers (see audit/writer.ts), so
 * the token endpoint never waits on the audit table.
 */
export function installTokenAudit(provider: Provider, audit: AuditSink): void {
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
        jti: token?.jti,
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
