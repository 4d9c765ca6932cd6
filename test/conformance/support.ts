import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import http from 'node:http';
import { after, before } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';

/**
 * Black-box conformance support. The harness starts a real Keyward on loopback; everything
 * after that goes over HTTP: the bootstrap admin client (seeded from the environment, as an
 * operator would) creates roles, APIs, clients and users through /admin/v1, and the flows
 * use only the endpoints discovery names. Nothing here reads the store or imports src/.
 */
export const ADMIN_CLIENT_ID = 'conformance-admin';
export const ADMIN_CLIENT_SECRET = randomBytes(32).toString('base64url');
export const ORDERS = 'https://orders.conformance.test';
/** Nothing listens there: the flows read the code from the Location header. */
export const REDIRECT_URI = 'http://127.0.0.1:9/cb';
export const RP_ORIGIN = 'http://127.0.0.1:9';
export const POST_LOGOUT_URI = 'http://127.0.0.1:9/bye';

export interface Op {
  /** The issuer (equal to the base URL). */
  url: string;
  server: TestServer;
  db: TestDatabase;
  discovery: Discovery;
  admin: AdminApi;
}

export interface Discovery {
  issuer: string;
  authorization_endpoint: string;
  token_endpoint: string;
  jwks_uri: string;
  userinfo_endpoint: string;
  introspection_endpoint: string;
  revocation_endpoint: string;
  end_session_endpoint: string;
  pushed_authorization_request_endpoint?: string;
  [key: string]: unknown;
}

/** Registers before/after hooks for one Keyward per test file; `op()` is valid inside tests. */
export function useOp(options: { env?: Record<string, string>; now?: () => Date; seed?: (op: Op) => Promise<void> } = {}): () => Op {
  let op: Op | undefined;
  before(async () => {
    const db = await createTestDatabase();
    const server = await startServer(db, {
      KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN_CLIENT_ID, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN_CLIENT_SECRET, ...options.env,
    }, options.now ? { now: options.now } : {});
    const discovery = await (await fetch(`${server.url}/.well-known/openid-configuration`)).json() as Discovery;
    op = { url: server.url, server, db, discovery, admin: new AdminApi(server.url, discovery.issuer) };
    // In this hook, not a before() of the test file: root-level hooks of node 20 are not ordered.
    await options.seed?.(op);
  });
  after(async () => {
    await op?.server.stop();
    await op?.db.drop();
  });
  return () => {
    assert.ok(op, 'the OP is not started');
    return op;
  };
}

/** The backend the suite runs on; parallel-race tests are skipped on PGlite (one connection serializes every request). */
export const onPglite = !process.env.DATABASE_URL;
export const RACE_SKIP = onPglite ? 'PGlite runs one query at a time, so requests cannot race; this proof needs PostgreSQL' : false;

export interface Reply {
  status: number;
  headers: Headers;
  json: Record<string, unknown> | undefined;
  text: string;
}

async function reply(res: Response): Promise<Reply> {
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try { json = JSON.parse(text) as Record<string, unknown>; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

export function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** A raw form POST, for the requests a conforming client library would refuse to send. */
export async function postForm(url: string, body: Record<string, string>, headers: Record<string, string> = {}): Promise<Reply> {
  return reply(await fetch(url, {
    method: 'POST', redirect: 'manual',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(body),
  }));
}

export async function get(url: string, headers: Record<string, string> = {}): Promise<Reply> {
  return reply(await fetch(url, { redirect: 'manual', headers }));
}

/** A GET through node:http, which sends the Host header it is given (fetch() does not). */
export function rawGet(url: string, headers: Record<string, string>): Promise<{ status: number; headers: http.IncomingHttpHeaders; body: string }> {
  return new Promise((resolve, reject) => {
    const req = http.get(url, { headers, agent: false }, (res) => {
      const chunks: Buffer[] = [];
      res.on('data', (c: Buffer) => chunks.push(c));
      res.on('end', () => resolve({ status: res.statusCode ?? 0, headers: res.headers, body: Buffer.concat(chunks).toString('utf8') }));
      res.on('error', reject);
    });
    req.on('error', reject);
  });
}

/** The admin REST API, called with the bootstrap admin client's client-credentials token. */
export class AdminApi {
  #token: { value: string; until: number } | undefined;
  /** `base` is where the server listens, `issuer` its ISSUER (they differ behind a proxy). */
  constructor(readonly base: string, readonly issuer = base) {}

  /** Drops the cached admin token (after the server's clock moved). */
  forget(): void {
    this.#token = undefined;
  }

  async token(): Promise<string> {
    if (this.#token && this.#token.until > Date.now()) return this.#token.value;
    const res = await postForm(`${this.base}/token`, { grant_type: 'client_credentials', resource: `${this.issuer}/admin` },
      { authorization: basic(ADMIN_CLIENT_ID, ADMIN_CLIENT_SECRET) });
    assert.equal(res.status, 200, res.text);
    const value = res.json!.access_token as string;
    this.#token = { value, until: Date.now() + 60_000 };
    return value;
  }

  async call(method: string, path: string, body?: unknown, token?: string): Promise<Reply> {
    return reply(await fetch(`${this.base}/admin/v1${path}`, {
      method,
      headers: {
        authorization: `Bearer ${token ?? await this.token()}`,
        ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      },
      ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
    }));
  }

  /** A call that must succeed with `status`; answers the parsed body. */
  async ok<T = Record<string, unknown>>(method: string, path: string, body?: unknown, status = method === 'POST' ? 201 : 200): Promise<T> {
    const res = await this.call(method, path, body);
    assert.equal(res.status, status, `${method} ${path}: ${res.text}`);
    return res.json as T;
  }

  async client(metadata: Record<string, unknown>): Promise<Client> {
    const body = await this.ok<{ client_id: string; client_secret?: string }>('POST', '/clients', { client_name: 'Conformance RP', ...metadata });
    return { clientId: body.client_id, ...(body.client_secret ? { secret: body.client_secret } : {}) };
  }

  /** A browser app: authorization code + refresh, public unless `metadata` says otherwise. */
  async app(metadata: Record<string, unknown> = {}): Promise<Client> {
    return this.client({
      grant_types: ['authorization_code', 'refresh_token'], redirect_uris: [REDIRECT_URI], post_logout_redirect_uris: [POST_LOGOUT_URI],
      token_endpoint_auth_method: 'none', first_party: true, ...metadata,
    });
  }

  async service(roles: string[], metadata: Record<string, unknown> = {}): Promise<Client> {
    return this.client({ grant_types: ['client_credentials'], roles, ...metadata });
  }

  async user(roles: string[] = []): Promise<User> {
    const username = `u${randomBytes(5).toString('hex')}`;
    const password = `pw-${randomBytes(12).toString('base64url')}`;
    const body = await this.ok<{ id: string }>('POST', '/users', { username, email: `${username}@example.test`, name: `User ${username}`, password, roles });
    return { id: body.id, username, password };
  }

  async role(name: string, permissions: string[]): Promise<void> {
    const res = await this.call('POST', '/roles', { name, permissions });
    assert.ok(res.status === 201 || res.status === 409, res.text);
  }

  async resource(identifier: string, scopes: string[], extra: Record<string, unknown> = {}): Promise<void> {
    const res = await this.call('POST', '/resources', { identifier, name: identifier, scopes, access_token_ttl: 300, ...extra });
    assert.ok(res.status === 201 || res.status === 409, res.text);
  }
}

export interface Client {
  clientId: string;
  secret?: string;
}

export interface User {
  id: string;
  username: string;
  password: string;
}

/** Headers authenticating a client with client_secret_basic (none for a public client). */
export function clientAuth(client: Client): Record<string, string> {
  return client.secret ? { authorization: basic(client.clientId, client.secret) } : {};
}

export class CookieJar {
  readonly #cookies = new Map<string, string>();
  header(): string {
    return [...this.#cookies].map(([k, v]) => `${k}=${v}`).join('; ');
  }
  take(res: Response): void {
    for (const line of res.headers.getSetCookie()) {
      const [pair] = line.split(';');
      const at = pair!.indexOf('=');
      const value = pair!.slice(at + 1);
      if (value) this.#cookies.set(pair!.slice(0, at), value); else this.#cookies.delete(pair!.slice(0, at));
    }
  }
}

export interface Pkce {
  verifier: string;
  challenge: string;
}

export function pkce(): Pkce {
  const verifier = randomBytes(32).toString('base64url');
  return { verifier, challenge: createHash('sha256').update(verifier).digest('base64url') };
}

/** An authorization request with PKCE S256, state and nonce; `params` override any field (undefined removes it). */
export function authParams(client: Client, challenge: string, params: Record<string, string | undefined> = {}): URLSearchParams {
  const all: Record<string, string | undefined> = {
    client_id: client.clientId, response_type: 'code', redirect_uri: REDIRECT_URI, scope: 'openid offline_access',
    prompt: 'consent', state: randomBytes(8).toString('hex'), nonce: randomBytes(8).toString('hex'),
    code_challenge: challenge, code_challenge_method: 'S256', ...params,
  };
  return new URLSearchParams(Object.entries(all).filter((e): e is [string, string] => e[1] !== undefined));
}

/** Where a browser ended up: the client's redirect URI (with its parameters) or a Keyward page. */
export interface Outcome {
  /** The redirect to the client, when there was one. */
  redirect?: URL;
  /** The last page otherwise (status and HTML). */
  page?: { url: string; status: number; html: string };
  /** Interaction pages seen on the way ('login' | 'consent'). */
  pages: string[];
  jar: CookieJar;
  /** Self-submitting pages (form_post, "end the previous session") submitted on the way, with their headers. */
  autoSubmitted: { url: string; headers: Headers }[];
}

export interface Browse {
  user?: User;
  jar?: CookieJar;
  /** `allow` (default) or `deny` on a consent page. */
  decision?: 'allow' | 'deny';
  /** Stop at the first page instead of filling it. */
  stopAtPage?: boolean;
}

/**
 * Follows the redirects a browser would, filling the login form (username, password, csrf)
 * and the consent form (decision, csrf), until the response leaves Keyward's origin.
 */
export async function browse(issuer: string, start: string, options: Browse = {}): Promise<Outcome> {
  const jar = options.jar ?? new CookieJar();
  const pages: string[] = [];
  const autoSubmitted: Outcome['autoSubmitted'] = [];
  let url = start;
  let method: 'GET' | 'POST' = 'GET';
  let body: URLSearchParams | undefined;
  for (let hop = 0; hop < 15; hop++) {
    if (new URL(url).origin !== new URL(issuer).origin) return { redirect: new URL(url), pages, jar, autoSubmitted };
    const res = await fetch(url, {
      method, redirect: 'manual',
      headers: { cookie: jar.header(), ...(body ? { 'content-type': 'application/x-www-form-urlencoded', origin: issuer } : {}) },
      ...(body ? { body } : {}),
    });
    jar.take(res);
    method = 'GET';
    body = undefined;
    if (res.status >= 300 && res.status < 400) {
      url = new URL(res.headers.get('location')!, url).toString();
      continue;
    }
    const html = await res.text();
    const auto = autoSubmit(html, url);
    if (res.status === 200 && auto && !options.stopAtPage) {
      // What the page's script does in a browser: post its hidden fields.
      autoSubmitted.push({ url, headers: res.headers });
      url = auto.action;
      body = auto.fields;
      method = 'POST';
      continue;
    }
    const csrf = /name="csrf" value="([^"]+)"/.exec(html)?.[1];
    const isLogin = url.includes('/interaction/') && html.includes('name="password"');
    const isConsent = url.includes('/interaction/') && html.includes('name="decision"');
    if (res.status !== 200 || !csrf || (!isLogin && !isConsent) || options.stopAtPage) {
      if (isLogin) pages.push('login');
      if (isConsent) pages.push('consent');
      return { page: { url, status: res.status, html }, pages, jar, autoSubmitted };
    }
    if (isLogin) {
      pages.push('login');
      assert.ok(options.user, `a login page at ${url} and no user to sign in`);
      url = `${url.replace(/\/$/, '')}/login`;
      body = new URLSearchParams({ csrf, username: options.user.username, password: options.user.password });
    } else {
      pages.push('consent');
      url = `${url.replace(/\/$/, '')}/consent`;
      body = new URLSearchParams({ csrf, decision: options.decision ?? 'allow' });
    }
    method = 'POST';
  }
  throw new Error(`too many redirects from ${start}`);
}

/** A page whose script submits its only form at once (oidc-provider's form_post and logout pages). */
function autoSubmit(html: string, base: string): { action: string; fields: URLSearchParams } | undefined {
  if (!/forms\[0\]\.submit\(\)/.test(html)) return undefined;
  const action = /<form method="post" action="([^"]+)"/.exec(html)?.[1];
  if (!action) return undefined;
  const fields = new URLSearchParams();
  for (const m of html.matchAll(/<input type="hidden" name="([^"]+)" value="([^"]*)"\/?>/g)) fields.append(m[1]!, decodeEntities(m[2]!));
  return { action: new URL(decodeEntities(action), base).toString(), fields };
}

function decodeEntities(text: string): string {
  return text.replace(/&amp;/g, '&').replace(/&quot;/g, '"').replace(/&#39;/g, "'").replace(/&lt;/g, '<').replace(/&gt;/g, '>');
}

export interface Code {
  code: string;
  verifier: string;
  redirect: URL;
  jar: CookieJar;
}

/** Runs the code flow for `user` and answers the code (asserts one came back). */
export async function authorize(issuer: string, client: Client, user: User, params: Record<string, string | undefined> = {}, jar?: CookieJar): Promise<Code> {
  const { verifier, challenge } = pkce();
  const out = await browse(issuer, `${issuer}/auth?${authParams(client, challenge, params)}`, { user, ...(jar ? { jar } : {}) });
  const code = out.redirect?.searchParams.get('code');
  assert.ok(code, `no code: ${out.redirect?.toString() ?? `${out.page?.status} ${out.page?.url} ${out.page?.html.slice(0, 300)}`}`);
  return { code, verifier, redirect: out.redirect!, jar: out.jar };
}

export function codeGrant(client: Client, code: Code, extra: Record<string, string> = {}): Record<string, string> {
  return { grant_type: 'authorization_code', client_id: client.clientId, code: code.code, code_verifier: code.verifier, redirect_uri: REDIRECT_URI, ...extra };
}

export function refreshGrant(client: Client, refreshToken: string, extra: Record<string, string> = {}): Record<string, string> {
  return { grant_type: 'refresh_token', client_id: client.clientId, refresh_token: refreshToken, ...extra };
}

/** Code flow then token request; answers the token response (asserted 200). */
export async function tokens(op: Op, client: Client, user: User, params: Record<string, string | undefined> = {}, extra: Record<string, string> = {}): Promise<Record<string, unknown>> {
  const code = await authorize(op.url, client, user, params);
  const res = await postForm(op.discovery.token_endpoint, codeGrant(client, code, extra), clientAuth(client));
  assert.equal(res.status, 200, res.text);
  return res.json!;
}

export function claims(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[1]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}

export function header(jwt: string): Record<string, unknown> {
  return JSON.parse(Buffer.from(jwt.split('.')[0]!, 'base64url').toString('utf8')) as Record<string, unknown>;
}
