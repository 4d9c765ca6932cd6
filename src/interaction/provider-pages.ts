import type { Context } from 'koa';
import type { Configuration, KoaContextWithOIDC } from 'oidc-provider';
import type { PageHeaders } from '../oidc/overrides/index.ts';
import { formTarget, setPageHeaders } from './headers.ts';
import { errorPage, loggedOutPage, logoutPage, type ErrorView } from './views.ts';

/** Friendly words for the errors a person can land on (the rest get a generic page). */
const ERROR_WORDS: Record<string, Omit<ErrorView, 'code' | 'description'>> = {
  invalid_redirect_uri: {
    title: 'Cannot return to the application',
    message: 'The application asked Keyward to send you to an address it has not registered, so Keyward stopped here to protect you. Contact the application’s owner.',
  },
  invalid_client: { title: 'Unknown application', message: 'The application that sent you here is not registered with Keyward or is disabled.' },
  session_not_found: { title: 'Sign-in expired', message: 'This sign-in request has expired or was already completed. Go back to the application and start again.' },
  invalid_request: { title: 'Invalid request', message: 'The application sent an incomplete or invalid sign-in request.' },
};

const clientNameOf = (ctx: KoaContextWithOIDC): string | undefined => ctx.oidc?.client?.clientName ?? ctx.oidc?.client?.clientId;

/**
 * oidc-provider's side of the browser pages: where interactions happen (our routes in
 * src/interaction), and Keyward-styled error and logout pages with the same headers.
 */
export function interactionConfiguration(): Partial<Configuration> {
  return {
    interactions: {
      url: (_ctx, interaction) => `/interaction/${interaction.uid}`,
    },
    // Errors that cannot go back to the client (e.g. redirect_uri not registered) render here,
    // on Keyward, instead of redirecting anywhere.
    async renderError(ctx, out, _error) {
      const words = ERROR_WORDS[out.error] ?? { title: 'Something went wrong', message: 'Keyward could not complete this request. Go back to the application and try again.' };
      setPageHeaders(ctx);
      ctx.type = 'html';
      ctx.body = errorPage({ ...words, code: out.error, description: out.error_description });
    },
    features: {
      rpInitiatedLogout: {
        enabled: true,
        async logoutSource(ctx, form) {
          // Confirming redirects to the post_logout_redirect_uri, already matched against
          // the client's registration by oidc-provider.
          setPageHeaders(ctx, [formTarget(ctx.oidc.params?.post_logout_redirect_uri)]);
          ctx.type = 'html';
          ctx.body = logoutPage({ form, clientName: clientNameOf(ctx) });
        },
        async postLogoutSuccessSource(ctx) {
          setPageHeaders(ctx);
          ctx.type = 'html';
          ctx.body = loggedOutPage({ clientName: clientNameOf(ctx) });
        },
      },
    },
  };
}

/** The same headers for the pages oidc-provider renders itself (the form_post auto-submit). */
export const providerPageHeaders: PageHeaders = (ctx, page) => {
  setPageHeaders(ctx, page.formTargets.map(formTarget), page.scriptHashes);
};

/** A person's page for a request refused at the edge (unreadable input, too many requests). */
export function refusalPage(ctx: Context, status: number, error: string, description: string, headers: Record<string, string> = {}): void {
  const view: Omit<ErrorView, 'code' | 'description'> = status === 429
    ? { title: 'Too many attempts', message: 'Too many requests came from your network. Wait a moment, then try again.' }
    : ERROR_WORDS.invalid_request!;
  ctx.status = status;
  for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
  setPageHeaders(ctx);
  ctx.type = 'html';
  ctx.body = errorPage({ ...view, code: error, description });
}
