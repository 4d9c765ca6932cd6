import Router from '@koa/router';
import type { Context } from 'koa';
import { errors, type Interaction } from 'oidc-provider';
import { z } from 'zod';
import type { AuditWriter } from '../audit/writer.ts';
import type { ClientService } from '../identity/clients/index.ts';
import { requestIdOf } from '../log/logger.ts';
import type { PasswordAuthenticator } from '../identity/password-login.ts';
import type { ResourceService } from '../identity/resources.ts';
import type { UserService } from '../identity/users.ts';
import type { ProviderHolder } from '../oidc/holder.ts';
import { isStoreUnavailable } from '../store/unavailable.ts';
import { describe, grantMissing, missingConsent, previouslyAllowed, requestedResources, type GrantHistory } from './consent.ts';
import type { CsrfTokens } from './csrf.ts';
import { BadForm, readForm } from './form.ts';
import { formTarget, setPageHeaders } from './headers.ts';
import type { LoginThrottle, ThrottleVerdict } from './throttle.ts';
import { consentPage, errorPage, loginPage, type ErrorView } from './views.ts';

export interface InteractionDeps {
  /** Read at request time: the Provider instance is swapped when keys reload. */
  provider: ProviderHolder;
  clients: ClientService;
  resources: ResourceService;
  users: Pick<UserService, 'usernameOf'>;
  grants: GrantHistory;
  audit: AuditWriter;
  csrf: CsrfTokens;
  throttle: LoginThrottle;
  authenticator: PasswordAuthenticator;
  now: () => Date;
}

const INVALID_CREDENTIALS = 'Incorrect username or password.';

const loginForm = z.object({
  username: z.string().trim().min(1).max(256),
  password: z.string().min(1).max(1024),
});
const consentForm = z.object({ decision: z.enum(['allow', 'deny']) });

/** Thrown inside handlers to answer with the error page. */
class PageError extends Error {
  constructor(readonly status: number, readonly view: ErrorView) {
    super(view.title);
  }
}

const EXPIRED: ErrorView = {
  title: 'Sign-in expired',
  message: 'This sign-in request has expired or was already completed. Go back to the application and start again.',
};

/**
 * Keyward's login and consent pages on oidc-provider's interaction API. oidc-provider sends
 * the browser to /interaction/:uid with a signed cookie naming the interaction; each form
 * posts back there and answers 303 to oidc-provider's resume URL.
 */
export function interactionRoutes(deps: InteractionDeps): Router {
  const router = new Router({ prefix: '/interaction' });

  router.use(async (ctx, next) => {
    setPageHeaders(ctx);
    try {
      await next();
    } catch (error) {
      if (error instanceof PageError) return render(ctx, error.status, errorPage(error.view));
      if (error instanceof errors.SessionNotFound) return render(ctx, 400, errorPage(EXPIRED));
      if (error instanceof BadForm) return render(ctx, 400, errorPage({ title: 'Bad request', message: 'The form could not be read. Go back and try again.' }));
      if (isStoreUnavailable(error)) {
        ctx.set('Retry-After', '2');
        return render(ctx, 503, errorPage({ title: 'Temporarily unavailable', message: 'The service cannot reach its database. Try again in a moment.' }));
      }
      throw error;
    }
  });

  router.get('/:uid', async (ctx) => {
    const interaction = await load(ctx);
    const client = await deps.clients.record(interaction.params.client_id as string);
    const clientName = client?.name ?? String(interaction.params.client_id);
    if (interaction.prompt.name === 'login') {
      const hint = typeof interaction.params.login_hint === 'string' ? interaction.params.login_hint.slice(0, 256) : undefined;
      return render(ctx, 200, loginPage({ action: `/interaction/${interaction.uid}/login`, csrf: deps.csrf.issue(interaction.uid), clientName, username: hint }), interaction);
    }
    if (interaction.prompt.name === 'consent') {
      const accountId = interaction.session!.accountId;
      const missing = missingConsent(interaction);
      const explicit = interaction.prompt.reasons.includes('consent_prompt');
      const skip = client?.firstParty || (!explicit && await previouslyAllowed(deps.grants, deps.now(), accountId, client?.clientId ?? '', missing));
      if (skip) return finishConsent(ctx, interaction, 'allow');
      const username = await deps.users.usernameOf(accountId);
      const resources = requestedResources(interaction, client?.metadata.default_resource);
      const names = new Map<string, string>();
      for (const resource of new Set([...Object.keys(missing.resourceScopes), ...resources])) {
        const server = await deps.resources.byIdentifier(resource);
        if (server?.name) names.set(resource, server.name);
      }
      const items = describe(missing, (id) => names.get(id) ?? id, resources);
      if (!items.length) items.push({ what: 'Confirm who you are (your Keyward user ID)', code: 'openid' });
      return render(ctx, 200, consentPage({
        action: `/interaction/${interaction.uid}/consent`, csrf: deps.csrf.issue(interaction.uid),
        clientName, username: username ?? '', items,
      }), interaction);
    }
    throw new PageError(400, { title: 'Unsupported request', message: 'Keyward cannot complete this sign-in step. Go back to the application and start again.' });
  });

  // Reloading the page a failed POST rendered (or following its URL) goes back to the form.
  router.get(['/:uid/login', '/:uid/consent'], (ctx) => redirect303(ctx, `/interaction/${encodeURIComponent(ctx.params.uid ?? '')}`));

  router.post('/:uid/login', async (ctx) => {
    const interaction = await load(ctx, 'login');
    const fields = await checkedForm(ctx, interaction);
    const client = await deps.clients.record(interaction.params.client_id as string);
    const clientName = client?.name ?? String(interaction.params.client_id);
    const again = (status: number, error: string, username?: string) => render(ctx, status, loginPage({
      action: `/interaction/${interaction.uid}/login`, csrf: deps.csrf.issue(interaction.uid), clientName, username, error,
    }), interaction);

    const parsed = loginForm.safeParse(fields);
    if (!parsed.success) return again(400, 'Enter your username and password.', fields.username?.slice(0, 256));
    const { username, password } = parsed.data;
    const candidate = await deps.authenticator.lookup(username);
    const attempt = { account: candidate.account, ip: ctx.ip };
    const audit = { actor: username, ip: ctx.ip, subject: interaction.params.client_id as string, requestId: requestIdOf(ctx) };

    // The attempt is counted before its password is checked (and refunded on success), so
    // parallel guesses cannot all pass the throttle (issue 10 F3).
    const reservation = await deps.throttle.reserve(attempt);
    if (!reservation.allowed) {
      deps.audit.record({ type: 'login.failure', outcome: 'failure', ...audit, details: { reason: `throttled_${reservation.scope}` } });
      ctx.set('Retry-After', String(Math.ceil(reservation.retryAfterMs / 1000)));
      return again(429, throttledMessage(reservation), username);
    }

    const result = await deps.authenticator.verify(candidate, password);
    if (!result.ok) {
      deps.audit.record({ type: 'login.failure', outcome: 'failure', ...audit, details: { reason: result.reason } });
      if (result.reason === 'disabled') {
        await deps.throttle.refund(reservation);
        return again(403, 'This account is disabled. Contact your administrator.', username);
      }
      const { locks } = reservation;
      for (const lock of locks) {
        deps.audit.record({ type: 'login.locked', outcome: 'failure', ...audit, details: { scope: lock.scope, until: lock.until.toISOString() } });
      }
      if (locks.length) {
        const longest = Math.max(...locks.map((l) => l.until.getTime())) - deps.now().getTime();
        ctx.set('Retry-After', String(Math.ceil(longest / 1000)));
        return again(429, throttledMessage({ allowed: false, reason: 'locked', scope: locks[0]!.scope, retryAfterMs: longest }), username);
      }
      return again(401, INVALID_CREDENTIALS, username);
    }

    await deps.throttle.succeeded(reservation);
    deps.audit.record({ type: 'login.success', outcome: 'success', ...audit, actor: result.userId, details: { username: result.username, ...(result.rehashed ? { rehashed: true } : {}) } });
    const returnTo = await deps.provider.current.interactionResult(ctx.req, ctx.res, {
      login: { accountId: result.userId, amr: ['pwd'] },
    }, { mergeWithLastSubmission: false });
    redirect303(ctx, returnTo);
  });

  router.post('/:uid/consent', async (ctx) => {
    const interaction = await load(ctx, 'consent');
    const fields = await checkedForm(ctx, interaction);
    const parsed = consentForm.safeParse(fields);
    if (!parsed.success) throw new PageError(400, { title: 'Bad request', message: 'Choose Allow or Deny.' });
    await finishConsent(ctx, interaction, parsed.data.decision);
  });

  /** The interaction named by the browser's cookie; it must be the one in the URL. */
  async function load(ctx: Context, prompt?: 'login' | 'consent'): Promise<Interaction> {
    const interaction = await deps.provider.current.interactionDetails(ctx.req, ctx.res);
    if (interaction.uid !== (ctx.params as Record<string, string | undefined>).uid) throw new PageError(400, EXPIRED);
    if (prompt && interaction.prompt.name !== prompt) throw new PageError(400, EXPIRED);
    return interaction;
  }

  /** The posted form, refused with 403 unless it carries this interaction's CSRF token. */
  async function checkedForm(ctx: Context, interaction: Interaction): Promise<Record<string, string>> {
    const fields = await readForm(ctx);
    if (!deps.csrf.verify(interaction.uid, fields.csrf)) {
      throw new PageError(403, { title: 'Request refused', message: 'This form was not submitted from the Keyward sign-in page, or it is out of date. Go back and try again.' });
    }
    return fields;
  }

  async function finishConsent(ctx: Context, interaction: Interaction, decision: 'allow' | 'deny'): Promise<void> {
    const provider = deps.provider.current;
    if (decision === 'deny') {
      const returnTo = await provider.interactionResult(ctx.req, ctx.res, {
        error: 'access_denied', error_description: 'End-User denied the authorization request',
      }, { mergeWithLastSubmission: false });
      return redirect303(ctx, returnTo);
    }
    const { accountId } = interaction.session!;
    const clientId = interaction.params.client_id as string;
    const grant = interaction.grantId ? await provider.Grant.find(interaction.grantId) : new provider.Grant({ accountId, clientId });
    if (!grant) throw new PageError(400, EXPIRED);
    grantMissing(grant, missingConsent(interaction));
    const grantId = await grant.save();
    const returnTo = await provider.interactionResult(ctx.req, ctx.res, { consent: { grantId } }, { mergeWithLastSubmission: true });
    redirect303(ctx, returnTo);
  }

  return router;
}

function render(ctx: Context, status: number, html: string, interaction?: Interaction): void {
  // The form's submission ends in a redirect to the client: allow that origin (headers.ts).
  if (interaction) setPageHeaders(ctx, [formTarget(interaction.params.redirect_uri)]);
  ctx.status = status;
  ctx.type = 'html';
  ctx.body = html;
}

function redirect303(ctx: Context, location: string): void {
  ctx.redirect(location);
  ctx.status = 303;
}

function throttledMessage(verdict: Extract<ThrottleVerdict, { allowed: false }>): string {
  const seconds = Math.ceil(verdict.retryAfterMs / 1000);
  if (verdict.reason === 'delayed') return `Too many failed attempts. Wait ${seconds} second${seconds === 1 ? '' : 's'} and try again.`;
  const minutes = Math.ceil(seconds / 60);
  const wait = minutes <= 1 ? 'a minute' : `${minutes} minutes`;
  return verdict.scope === 'account'
    ? `Too many failed attempts. Sign-in to this account from your network is blocked for ${wait}; try again later.`
    : `Too many failed attempts from your network. Sign-in is blocked for ${wait}; try again later.`;
}
