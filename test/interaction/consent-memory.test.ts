import assert from 'node:assert/strict';
import { after, before, test } from 'node:test';
import * as oidc from 'openid-client';
import { createPublicClient, createUser, rp, startCallback, type Callback, type TestUser } from '../e2e/support.ts';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';

/**
 * The consent page is skipped when the person already allowed the same scopes to the same
 * client in another live grant (src/interaction/consent.ts previouslyAllowed, answered by the
 * indexed account_id/client_id lookup in src/store/oidc-grants.ts). Driven over plain HTTP with
 * a cookie jar per "device", so it runs without a browser.
 */
let db: TestDatabase;
let server: TestServer;
let callback: Callback;
let config: oidc.Configuration;
let user: TestUser;

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  callback = await startCallback();
  config = await rp(server.url, await createPublicClient(server.keyward, callback, { name: 'Acme Reports', firstParty: false }));
  user = await createUser(server.keyward);
});
after(async () => {
  await callback?.close();
  await server?.stop();
  await db?.drop();
});

/** One browser's cookies for the issuer (path is ignored: oidc-provider's cookie names are distinct). */
class Device {
  readonly #cookies = new Map<string, string>();

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
      if (at.startsWith(callback.redirectUri)) return { url: at, res };
      res = await this.request(at);
    }
    return { url: at, res };
  }
}

const csrfOf = (html: string) => /name="csrf" value="([^"]+)"/.exec(html)?.[1] ?? assert.fail('no csrf field on the page');

async function signIn(device: Device, who: TestUser = user): Promise<{ url: string; html: string }> {
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: callback.redirectUri, scope: 'openid email',
    code_challenge: await oidc.calculatePKCECodeChallenge(oidc.randomPKCECodeVerifier()), code_challenge_method: 'S256',
  });
  const login = await device.follow(url.href);
  const loginHtml = await login.res.text();
  assert.match(loginHtml, /Sign in/);
  const after = await device.follow(`${login.url}/login`, {
    method: 'POST', form: { username: who.username, password: who.password, csrf: csrfOf(loginHtml) },
  });
  return { url: after.url, html: after.url.startsWith(callback.redirectUri) ? '' : await after.res.text() };
}

test('consent given on one device is remembered on another for the same scopes (no second consent page)', async () => {
  const laptop = new Device();
  const first = await signIn(laptop);
  assert.ok(!first.url.startsWith(callback.redirectUri), 'the first sign-in asks for consent');
  assert.match(first.html, /Acme Reports/);
  const allowed = await laptop.follow(`${first.url}/consent`, { method: 'POST', form: { decision: 'allow', csrf: csrfOf(first.html) } });
  assert.ok(new URL(allowed.url).searchParams.get('code'), `allow returns a code to the client: ${allowed.url}`);

  const phone = new Device();
  const second = await signIn(phone);
  assert.ok(second.url.startsWith(callback.redirectUri), `no consent page on the second device: ${second.url}`);
  assert.ok(new URL(second.url).searchParams.get('code'));
});

test('a grant of another person does not count as consent', async () => {
  const page = await signIn(new Device(), await createUser(server.keyward));
  assert.ok(!page.url.startsWith(callback.redirectUri), 'a person who never allowed the client sees the consent page');
});
