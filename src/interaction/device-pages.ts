import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { AuditEvent } from '../audit/events.ts';
import { deviceFormFields } from '../oidc/overrides/index.ts';
import { setPageHeaders } from './headers.ts';
import { confirmDevicePage, deviceConnectedPage, deviceDeniedPage, userCodePage } from './device-views.ts';

/** Where audit events go (buffered; never awaited on the request path). */
export interface DeviceAudit {
  record(event: AuditEvent): void;
}

export interface DevicePagesOptions {
  audit: DeviceAudit;
  /** KEYWARD_DEVICE_CODE_TTL: how long a device code and its user code live. */
  codeTtlSeconds: number;
}

/**
 * User codes: 8 characters of the 20 consonants BCDFGHJKLMNPQRSTVWXZ (no vowels, so no words;
 * no look-alikes), shown as XXXX-XXXX: 20^8 ≈ 2.56 × 10^10 codes (RFC 8628 §6.1). With the
 * entry throttle (device-throttle.ts) guessing is impractical; README "Devices" has the numbers.
 */
export const USER_CODE = { charset: 'base-20', mask: '****-****' } as const;

/** What each way a typed code can fail is called in the audit trail and told to the person. */
const CODE_FAILURES: Record<string, { reason: string; message: string }> = {
  NoCodeError: { reason: 'missing', message: 'Enter the code shown on your device.' },
  NotFoundError: { reason: 'not_found', message: 'That code is not valid. Check the code on your device and try again.' },
  ExpiredError: { reason: 'expired', message: 'That code has expired. Start again on your device to get a new code.' },
  AlreadyUsedError: { reason: 'already_used', message: 'That code was already used. Start again on your device to get a new code.' },
};

function render(ctx: KoaContextWithOIDC, status: number, html: string): void {
  setPageHeaders(ctx);
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = html;
}

function clientNameOf(client: { clientName?: string | undefined; clientId: string } | undefined): string {
  return client?.clientName ?? client?.clientId ?? 'An application';
}

/**
 * Who denied which client, for the audit trail: on the confirmation page oidc-provider has
 * loaded the DeviceCode; after a denied consent (route device_resume) only the interaction
 * and the session are known.
 */
function deniedBy(ctx: KoaContextWithOIDC): { actor?: string | undefined; subject?: string | undefined } {
  const entities = ctx.oidc?.entities;
  const code = entities?.DeviceCode as { clientId?: string } | undefined;
  const interaction = entities?.Interaction as { params?: { client_id?: unknown }; session?: { accountId?: string } } | undefined;
  const clientId = interaction?.params?.client_id;
  return {
    actor: ctx.oidc?.session?.accountId ?? interaction?.session?.accountId,
    subject: code?.clientId ?? ctx.oidc?.client?.clientId ?? (typeof clientId === 'string' ? clientId : undefined),
  };
}

/**
 * RFC 8628 on oidc-provider's deviceFlow: Keyward-styled verification_uri, confirmation, success
 * and error pages with the login page's headers, user-code shape and lifetime, and the audit
 * events of the person's side of the flow (code entered, denied). After confirmation the
 * person goes through the ordinary interaction (login, consent for third-party clients).
 */
export function deviceFlowConfiguration(options: DevicePagesOptions): Partial<Configuration> {
  const { audit } = options;
  return {
    ttl: { DeviceCode: options.codeTtlSeconds },
    /**
     * A device's approval does not end with the browser session that gave it (the phone that
     * approved the TV is another device; signing out there must not sign the TV out). It also
     * closes a race in oidc-provider: it saves the approved device code (lib/actions/authorization/
     * device.js) before the session that names the code's grant, and a session-bound code is
     * invisible until both agree (lib/models/token_helpers.js checkSessionBinding), so a poll in
     * that window got `invalid_grant`. Other codes keep oidc-provider's default.
     */
    expiresWithSession: (_ctx, code) => code.kind !== 'DeviceCode' && !code.scopes.has('offline_access'),
    features: {
      deviceFlow: {
        enabled: true,
        ...USER_CODE,
        async userCodeInputSource(ctx, form, out, err) {
          const fields = deviceFormFields(form);
          if (!fields) throw new Error('oidc-provider user-code form changed shape (see src/oidc/overrides/device-forms.ts)');
          const name = err?.name;
          if (name === 'AbortedError') {
            audit.record({ type: 'device.denied', outcome: 'failure', ip: ctx.ip, ...deniedBy(ctx) });
            return render(ctx, 403, deviceDeniedPage({ action: fields.action }));
          }
          const failure = name ? CODE_FAILURES[name] : undefined;
          if (failure) {
            audit.record({ type: 'device.code_entered', outcome: 'failure', ip: ctx.ip, details: { reason: failure.reason } });
            const typed = (err as { userCode?: unknown } | undefined)?.userCode;
            return render(ctx, 400, userCodePage({ ...fields, userCode: typeof typed === 'string' ? typed.slice(0, 64) : undefined, error: failure.message }));
          }
          if (out) {
            // Anything else (an out-of-date form, a disabled client, a sign-in that failed):
            // the code page again, with a fresh xsrf value, so the person can start over.
            return render(ctx, ctx.status >= 400 ? ctx.status : 400, userCodePage({
              ...fields, error: `Keyward could not complete this request (${out.error}). Enter the code again, or start again on your device.`,
            }));
          }
          return render(ctx, 200, userCodePage(fields));
        },
        async userCodeConfirmSource(ctx, form, client, deviceInfo, userCode) {
          audit.record({ type: 'device.code_entered', outcome: 'success', ip: ctx.ip, subject: client.clientId });
          const device = deviceInfo as { ip?: unknown; ua?: unknown };
          render(ctx, 200, confirmDevicePage({
            form, clientName: clientNameOf(client), userCode,
            device: { ip: typeof device.ip === 'string' ? device.ip : undefined, ua: typeof device.ua === 'string' ? device.ua : undefined },
          }));
        },
        async successSource(ctx) {
          render(ctx, 200, deviceConnectedPage({ clientName: clientNameOf(ctx.oidc.client) }));
        },
      },
    },
  };
}
