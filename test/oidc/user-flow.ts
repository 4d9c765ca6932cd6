import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import type { Keyward } from '../../src/app.ts';
import { createUser, type TestUser } from '../e2e/support.ts';

/**
 * The authorization-code flow over plain HTTP (no browser): a cookie jar, the login form and
 * the redirects a browser would follow. For protocol tests that need codes and refresh tokens
 * in numbers; test/e2e covers the pages themselves.
 */
export const REDIRECT_URI = 'http://127.0.0.1:9/cb';

export interface UserFlow {
  clientId: string;
  /** Set for a confidential client (metadata `token_endpoint_auth_method: 'client_secret_basic'`). */
  secret?: string;
  user: TestUser;
}

/** A first-party public client (no consent page) and a user. */
export async function seedUserFlow(keyward: Keyward, metadata: Record<string, unknown> = {}): Promise<UserFlow> {
  const { client, client_secret: secret } = await keyward.clients.create({
    client_name: 'Flow test', grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT_URI],
    token_endpoint_auth_method: 'none', first_party: true, ...metadata,
  });
  return { clientId: client.client_id, ...(secret ? { secret } : {}), user: await createUser(keyward) };
}

export interface Code {
  code: string;
  verifier: string;
  /** The request_uri the flow started from, for a pushed request (RFC 9126). */
  requestUri?: string;
}

class CookieJar {
  readonly #cookies = new Map<string, string>();
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      const name = pair!.slice(0, at);
      const value = pair!.slice(at + 1);
      if (value) this.#cookies.set(name, value); else this.#cookies.delete(name);
    }
  }
}

/** Signs the user in through the login form and returns the code sent to the redirect URI. */
export async function authorize(issuer: string, flow: UserFlow, params: Record<string, string> = {}, options: { pushed?: boolean } = {}): Promise<Code> {
  const verifier = randomBytes(32).toString('base64url');
  const query = new URLSearchParams({
    client_id: flow.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid offline_access',
    prompt: 'consent', state: randomBytes(8).toString('hex'),
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
    ...params,
  });
  const requestUri = options.pushed ? await push(issuer, flow, query) : undefined;
  const jar = new CookieJar();
  let url = requestUri
    ? `${issuer}/auth?${new URLSearchParams({ client_id: flow.clientId, request_uri: requestUri })}`
    : `${issuer}/auth?${query}`;
  for (let hop = 0; hop < 10; hop++) {
    if (url.startsWith(REDIRECT_URI)) {
      const back = new URL(url).searchParams;
      assert.ok(back.get('code'), `no code in ${url}`);
      return { code: back.get('code')!, verifier, ...(requestUri ? { requestUri } : {}) };
    }
    const res = await fetch(url, { redirect: 'manual', headers: { cookie: jar.header() } });
    jar.take(res);
    if (res.status === 200 && url.includes('/interaction/')) {
      const html = await res.text();
      const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
      assert.ok(csrf, 'login form without csrf');
      const login = await fetch(`${url}/login`, {
        method: 'POST', redirect: 'manual',
        headers: { cookie: jar.header(), 'content-type': 'application/x-www-form-urlencoded', origin: issuer },
        body: new URLSearchParams({ csrf, username: flow.user.username, password: flow.user.password }),
      });
      jar.take(login);
      assert.equal(login.status, 303, await login.text());
      url = new URL(login.headers.get('location')!, issuer).toString();
      continue;
    }
    assert.ok(res.status >= 300 && res.status < 400, `${url} answered ${res.status}: ${await res.text()}`);
    url = new URL(res.headers.get('location')!, issuer).toString();
  }
  throw new Error('too many redirects');
}

/** The token request for a code, as a raw form (its answer is asserted by the caller). */
export function codeGrant(flow: UserFlow, code: Code, extra: Record<string, string> = {}): Record<string, string> {
  return { grant_type: 'authorization_code', client_id: flow.clientId, code: code.code, code_verifier: code.verifier, redirect_uri: REDIRECT_URI, ...extra };
}

export function refreshGrant(flow: UserFlow, refreshToken: string, extra: Record<string, string> = {}): Record<string, string> {
  return { grant_type: 'refresh_token', client_id: flow.clientId, refresh_token: refreshToken, ...extra };
}

/** Headers authenticating the flow's client at the token endpoint (none for a public client). */
export function clientAuth(flow: UserFlow): Record<string, string> {
  return flow.secret ? { authorization: `Basic ${Buffer.from(`${encodeURIComponent(flow.clientId)}:${encodeURIComponent(flow.secret)}`).toString('base64')}` } : {};
}

/** RFC 9126 §2: pushes the authorization request; returns its request_uri. */
export async function push(issuer: string, flow: UserFlow, query: URLSearchParams): Promise<string> {
  const res = await fetch(`${issuer}/request`, {
    method: 'POST', body: query, headers: { 'content-type': 'application/x-www-form-urlencoded', ...clientAuth(flow) },
  });
  const body = await res.json() as { request_uri?: string };
  assert.equal(res.status, 201, JSON.stringify(body));
  return body.request_uri!;
}
