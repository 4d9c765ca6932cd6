import assert from 'node:assert/strict';
import * as oidc from 'openid-client';
import type { Callback, TestUser } from '../e2e/support.ts';

/**
 * One browser's cookies for the issuer, over plain HTTP (no browser): enough to drive a login
 * and see every response's headers. Cookie paths are ignored (oidc-provider's names are distinct).
 */
export class Device {
  readonly #cookies = new Map<string, string>();
  /** Every Set-Cookie line received, as sent. */
  readonly setCookies: string[] = [];

  constructor(private readonly callback: Callback) {}

  async request(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<Response> {
    const res = await fetch(url, {
      method: init.method ?? 'GET',
      redirect: 'manual',
      headers: {
        cookie: [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; '),
        ...(init.form ? { 'content-type': 'application/x-www-form-urlencoded' } : {}),
      },
      ...(init.form ? { body: new URLSearchParams(init.form).toString() } : {}),
    });
    for (const line of res.headers.getSetCookie()) {
      this.setCookies.push(line);
      const [pair, ...attributes] = line.split(';');
      const [name, value = ''] = pair!.split(/=(.*)/s) as [string, string?];
      const expired = attributes.some((a) => /^\s*expires=/i.test(a) && Date.parse(a.split('=')[1]!) < Date.now());
      if (expired || value === '') this.#cookies.delete(name.trim());
      else this.#cookies.set(name.trim(), value);
    }
    return res;
  }

  /** Follows redirects on the issuer; stops at the first page or at the client's redirect URI. */
  async follow(url: string, init: { method?: string; form?: Record<string, string> } = {}): Promise<{ url: string; res: Response }> {
    let res = await this.request(url, init);
    let at = url;
    while (res.status >= 300 && res.status < 400) {
      at = new URL(res.headers.get('location')!, at).href;
      if (at.startsWith(this.callback.redirectUri)) return { url: at, res };
      res = await this.request(at);
    }
    return { url: at, res };
  }

  /**
   * Signs `user` in through the login form for the authorization request `url` (a first-party
   * client: no consent page). Ends where the provider answers after the login: the redirect to
   * the client, or a page (e.g. the form_post page).
   */
  async signIn(url: URL, user: TestUser): Promise<{ url: string; res: Response }> {
    const login = await this.follow(url.href);
    const html = await login.res.text();
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? assert.fail(`no login form: ${html.slice(0, 200)}`);
    return this.follow(`${login.url}/login`, { method: 'POST', form: { username: user.username, password: user.password, csrf } });
  }
}

/** An authorization request with PKCE for `config`; the verifier is needed to redeem the code. */
export async function codeRequest(config: oidc.Configuration, callback: Callback, extra: Record<string, string> = {}): Promise<{ url: URL; verifier: string }> {
  const verifier = oidc.randomPKCECodeVerifier();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: callback.redirectUri, scope: 'openid',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier), code_challenge_method: 'S256',
    ...extra,
  });
  return { url, verifier };
}
