import { escapeHtml as h, page } from './layout.ts';

export interface LoginView {
  action: string;
  csrf: string;
  clientName: string;
  username?: string | undefined;
  /** Shown above the form in an alert region; the same text for every credential failure. */
  error?: string | undefined;
}

/** The sign-in form: `username`, `password`, one submit button; works without JavaScript. */
export function loginPage(view: LoginView): string {
  const invalid = view.error ? ' aria-invalid="true" aria-describedby="form-error"' : '';
  // Focus goes where the person has to type next: the password when the username is known.
  const focusUser = view.username ? '' : ' autofocus';
  const focusPassword = view.username ? ' autofocus' : '';
  return page('Sign in', `<h1>Sign in</h1>`
    + `<p class="lead">to continue to <strong>${h(view.clientName)}</strong></p>`
    + (view.error ? `<p class="alert" id="form-error" role="alert">${h(view.error)}</p>` : '')
    + `<form method="post" action="${h(view.action)}" novalidate>`
    + `<input type="hidden" name="csrf" value="${h(view.csrf)}">`
    + `<div class="field"><label for="username">Username</label>`
    + `<input type="text" id="username" name="username" autocomplete="username" autocapitalize="none" spellcheck="false" required maxlength="256" value="${h(view.username ?? '')}"${invalid}${focusUser}></div>`
    + `<div class="field"><label for="password">Password</label>`
    + `<input type="password" id="password" name="password" autocomplete="current-password" required maxlength="1024"${invalid}${focusPassword}></div>`
    + `<div class="actions"><button type="submit">Sign in</button></div>`
    + `</form>`);
}

export interface ConsentItem {
  /** Plain words, e.g. "Your email address". */
  what: string;
  /** The technical scope (and API), shown small for those who want it. */
  code: string;
}

export interface ConsentView {
  action: string;
  csrf: string;
  clientName: string;
  username: string;
  items: ConsentItem[];
}

/** Consent for third-party clients: what the application asks for, one allow and one deny button. */
export function consentPage(view: ConsentView): string {
  const items = view.items.map((item) => `<li><span class="what">${h(item.what)}</span><span class="code">${h(item.code)}</span></li>`).join('');
  return page('Allow access', `<h1>Allow access?</h1>`
    + `<p class="lead"><strong>${h(view.clientName)}</strong> wants to access your Keyward account <strong>${h(view.username)}</strong>.</p>`
    + `<form method="post" action="${h(view.action)}">`
    + `<input type="hidden" name="csrf" value="${h(view.csrf)}">`
    + `<p class="muted" id="scopes-label">This will allow it to:</p>`
    + `<ul class="scopes" aria-labelledby="scopes-label">${items}</ul>`
    // Allow comes first in the DOM (focus order); on wide screens CSS shows it on the right.
    + `<div class="actions pair"><button type="submit" name="decision" value="allow">Allow</button>`
    + `<button type="submit" name="decision" value="deny" class="secondary">Deny</button></div>`
    + `</form><p class="muted">Allow access only to applications you trust.</p>`);
}

export interface ErrorView {
  title: string;
  message: string;
  /** Protocol error code and description, shown folded for support. */
  code?: string | undefined;
  description?: string | undefined;
}

export function errorPage(view: ErrorView): string {
  const details = view.code
    ? `<details><summary>Technical details</summary><p><code>${h(view.code)}</code>${view.description ? ` — ${h(view.description)}` : ''}</p></details>`
    : '';
  return page(view.title, `<h1>${h(view.title)}</h1><p class="lead">${h(view.message)}</p>${details}`);
}

/**
 * RP-initiated logout confirmation. `form` is oidc-provider's own hidden form (with its
 * xsrf field); the buttons submit it through the `form` attribute.
 */
export function logoutPage(view: { form: string; clientName: string | undefined }): string {
  const from = view.clientName ? ` from <strong>${h(view.clientName)}</strong>` : '';
  return page('Sign out', `<h1>Sign out?</h1><p class="lead">You asked to sign out${from}. This ends your Keyward session on this device.</p>`
    + view.form
    + `<div class="actions pair"><button type="submit" form="op.logoutForm" name="logout" value="yes" autofocus>Sign out</button>`
    + `<button type="submit" form="op.logoutForm" class="secondary">Stay signed in</button></div>`);
}

export function loggedOutPage(view: { clientName: string | undefined }): string {
  const from = view.clientName ? ` You can close this window or return to ${h(view.clientName)}.` : ' You can close this window.';
  return page('Signed out', `<h1>You are signed out</h1><p class="lead">Your Keyward session on this device has ended.${from}</p>`);
}
