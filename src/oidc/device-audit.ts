import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import { tokenErrorAnswered } from './overrides/index.ts';
import type { AuditSink } from './token-audit.ts';

/** The routes on which oidc-provider completes a device authorization (RFC 8628 §3.3). */
const DEVICE_ROUTES = new Set(['code_verification', 'device_resume']);

/**
 * Audits the device side of RFC 8628 from oidc-provider's events: a device asked for a code
 * (`device.requested`, §3.1-3.2), and a person approved it (`device.approved`, the code is then
 * bound to the account). Neither device_code nor user_code is recorded: both are secrets
 * while the code lives. Codes entered and denials are audited by the pages
 * (interaction/device-pages.ts); tokens by token-audit.ts.
 */
export function installDeviceAudit(provider: Provider, audit: AuditSink): void {
  provider.on('device_authorization.success', (ctx: KoaContextWithOIDC) => {
    const code = ctx.oidc.entities.DeviceCode as { scope?: string; params?: { scope?: unknown } } | undefined;
    const scope = code?.params?.scope;
    audit.record({
      type: 'device.requested', actor: ctx.oidc.client?.clientId, outcome: 'success', ip: ctx.ip,
      details: { ...(typeof scope === 'string' ? { scope: scope.slice(0, 1000) } : {}) },
    });
  });
  provider.on('device_authorization.error', (ctx: KoaContextWithOIDC, error: Error & { error?: string }) => {
    audit.recordRepeatable({
      type: 'device.requested', actor: ctx.oidc?.client?.clientId, outcome: 'failure', ip: ctx.ip,
      details: { error: tokenErrorAnswered(ctx, error.error) ?? error.name },
    }, `device|${ctx.oidc?.client?.clientId ?? '?'}|${ctx.ip}`);
  });
  provider.on('authorization.success', (ctx: KoaContextWithOIDC) => {
    if (!DEVICE_ROUTES.has(ctx.oidc.route ?? '')) return;
    const code = ctx.oidc.entities.DeviceCode as { accountId?: string; scope?: string } | undefined;
    audit.record({
      type: 'device.approved', actor: code?.accountId ?? ctx.oidc.session?.accountId, subject: ctx.oidc.client?.clientId,
      outcome: 'success', ip: ctx.ip, details: { ...(code?.scope ? { scope: code.scope } : {}) },
    });
  });
}
