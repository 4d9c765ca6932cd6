import { escapeHtml as h, page } from './layout.ts';

export interface UserCodeView {
  action: string;
  xsrf: string;
  /** What was typed, shown again after an error. */
  userCode?: string | undefined;
  /** Shown above the form in an alert region. */
  error?: string | undefined;
}

/**
 * The verification_uri page (RFC 8628 §3.3): one input named `user_code`, one submit button,
 * oidc-provider's xsrf value in a hidden field; works without JavaScript.
 */
export function userCodePage(view: UserCodeView): string {
  const invalid = view.error ? ' aria-invalid="true" aria-describedby="form-error"' : '';
  return page('Connect a device', `<h1>Connect a device</h1>`
    + `<p class="lead">Enter the code shown on your device’s screen.</p>`
    + (view.error ? `<p class="alert" id="form-error" role="alert">${h(view.error)}</p>` : '')
    + `<form method="post" action="${h(view.action)}" novalidate>`
    + `<input type="hidden" name="xsrf" value="${h(view.xsrf)}">`
    + `<div class="field"><label for="user_code">Device code</label>`
    + `<input type="text" class="user-code" id="user_code" name="user_code" placeholder="XXXX-XXXX" autocomplete="off" autocapitalize="characters" `
    + `spellcheck="false" required maxlength="64" value="${h(view.userCode ?? '')}"${invalid} autofocus></div>`
    + `<div class="actions"><button type="submit">Continue</button></div>`
    + `</form><p class="muted">Only enter a code from a device you have in front of you.</p>`);
}

export interface ConfirmDeviceView {
  /** oidc-provider's hidden confirm form (xsrf, user_code, confirm); the buttons submit it by its id. */
  form: string;
  clientName: string;
  userCode: string;
  /** Where the device asked from (oidc-provider's deviceInfo), for the person to recognise it. */
  device: { ip?: string | undefined; ua?: string | undefined };
}

/**
 * RFC 8628 §3.3.1, §5.4: a code that arrived in the URL (verification_uri_complete) or was
 * typed is never approved without this page, which names the application and shows the code
 * so the person can compare it with the one on the device.
 */
export function confirmDevicePage(view: ConfirmDeviceView): string {
  const details = [view.device.ip ? `<p>Address: <code>${h(view.device.ip)}</code></p>` : '', view.device.ua ? `<p>Software: <code>${h(view.device.ua.slice(0, 200))}</code></p>` : ''].join('');
  return page('Connect this device?', `<h1>Connect this device?</h1>`
    + `<p class="lead"><strong>${h(view.clientName)}</strong> on a device asks to use your Keyward account.</p>`
    + `<p class="muted" id="code-label">Continue only if your device shows this code:</p>`
    + `<p class="user-code-shown" aria-labelledby="code-label">${h(view.userCode)}</p>`
    + view.form
    + `<div class="actions pair"><button type="submit" form="op.deviceConfirmForm" autofocus>Continue</button>`
    + `<button type="submit" form="op.deviceConfirmForm" name="abort" value="yes" class="secondary">Cancel</button></div>`
    + (details ? `<details><summary>Where the request came from</summary>${details}</details>` : '')
    + `<p class="muted">If you did not start this on your own device, or the code differs, choose Cancel.</p>`);
}

export function deviceConnectedPage(view: { clientName: string }): string {
  return page('Device connected', `<h1>Device connected</h1>`
    + `<p class="lead"><strong>${h(view.clientName)}</strong> is now signed in with your Keyward account. You can close this window and return to your device.</p>`);
}

export function deviceDeniedPage(view: { action: string }): string {
  return page('Device not connected', `<h1>Device not connected</h1>`
    + `<p class="lead">You cancelled or denied the request, so the device was not signed in and received nothing from your account.</p>`
    + `<p class="muted"><a href="${h(view.action)}">Enter another code</a></p>`);
}

export function deviceThrottledPage(view: { minutes: number }): string {
  const wait = view.minutes <= 1 ? 'a minute' : `${view.minutes} minutes`;
  return page('Too many attempts', `<h1>Too many attempts</h1>`
    + `<p class="lead">Too many device codes that do not exist were entered from your network. Code entry is blocked for ${wait}; try again later.</p>`);
}
