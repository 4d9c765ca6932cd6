import { once } from 'node:events';
import http from 'node:http';
import type { AddressInfo } from 'node:net';
import { randomBytes } from 'node:crypto';
import * as oidc from 'openid-client';
import { chromium, type Browser, type Page } from 'playwright-core';
import { hashPassword } from '../../src/identity/passwords.ts';
import type { Keyward } from '../../src/app.ts';

/** Debian's chromium, never a downloaded browser. */
export function launchBrowser(): Promise<Browser> {
  return chromium.launch({
    executablePath: '/usr/bin/chromium',
    headless: true,
    args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking',
      '--disable-component-update', '--disable-sync'],
  });
}

/** The relying party's redirect target: a tiny loopback server that answers 200 to anything. */
export interface Callback {
  origin: string;
  redirectUri: string;
  postLogoutUri: string;
  close(): Promise<void>;
}

export async function startCallback(): Promise<Callback> {
  const server = http.createServer((_req, res) => {
    res.writeHead(200, { 'content-type': 'text/html' });
    res.end('<!DOCTYPE html><title>RP</title><p>relying party</p>');
  });
  server.listen(0, '127.0.0.1');
  await once(server, 'listening');
  const origin = `http://127.0.0.1:${(server.address() as AddressInfo).port}`;
  return {
    origin,
    redirectUri: `${origin}/cb`,
    postLogoutUri: `${origin}/bye`,
    close: () => new Promise((resolve) => { server.closeAllConnections(); server.close(() => resolve()); }),
  };
}

export interface TestUser {
  id: string;
  username: string;
  password: string;
}

let counter = 0;

/** A user straight in the store (the admin API is another module's concern). */
export async function createUser(keyward: Keyward, options: { roles?: string[]; disabled?: boolean; hash?: string } = {}): Promise<TestUser> {
  const username = `user${++counter}-${randomBytes(3).toString('hex')}`;
  const password = `pw-${randomBytes(9).toString('base64url')}`;
  for (const name of options.roles ?? []) {
    await keyward.store.prisma.role.upsert({ where: { name }, create: { name }, update: {} });
  }
  const user = await keyward.store.prisma.user.create({
    data: {
      username, email: `${username}@example.test`, emailVerified: true, name: `Test ${username}`,
      passwordHash: options.hash ?? await hashPassword(password), disabled: options.disabled ?? false,
      roles: { create: (options.roles ?? []).map((roleName) => ({ roleName })) },
    },
  });
  return { id: user.id, username, password };
}

/** A public browser client (PKCE, no secret). */
export async function createPublicClient(keyward: Keyward, callback: Callback, options: { firstParty?: boolean; name?: string } = {}): Promise<string> {
  const { client } = await keyward.clients.create({
    client_name: options.name ?? 'Orders Web',
    grant_types: ['authorization_code', 'refresh_token'],
    redirect_uris: [callback.redirectUri],
    post_logout_redirect_uris: [callback.postLogoutUri],
    token_endpoint_auth_method: 'none',
    first_party: options.firstParty ?? true,
  });
  return client.client_id;
}

export async function rp(issuer: string, clientId: string): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(issuer), clientId, undefined, oidc.None(), { execute: [oidc.allowInsecureRequests] });
}

export interface AuthRequest {
  url: URL;
  verifier: string;
  state: string;
  nonce: string;
}

export async function authRequest(config: oidc.Configuration, callback: Callback, extra: Record<string, string> = {}): Promise<AuthRequest> {
  const verifier = oidc.randomPKCECodeVerifier();
  const state = oidc.randomState();
  const nonce = oidc.randomNonce();
  const url = oidc.buildAuthorizationUrl(config, {
    redirect_uri: callback.redirectUri,
    scope: 'openid email profile roles offline_access',
    code_challenge: await oidc.calculatePKCECodeChallenge(verifier),
    code_challenge_method: 'S256',
    // OIDC Core §11: offline_access is only honoured with prompt=consent (first-party clients
    // still see no consent page).
    prompt: 'consent',
    state, nonce,
    ...extra,
  });
  return { url, verifier, state, nonce };
}

/** Fills and submits the login form; resolves once the navigation it started has settled. */
export async function submitLogin(page: Page, username: string, password: string): Promise<void> {
  await page.getByLabel('Username').fill(username);
  await page.getByLabel('Password').fill(password);
  await Promise.all([page.waitForLoadState('load'), page.getByRole('button', { name: 'Sign in' }).click()]);
  await page.waitForLoadState('load');
}

export function exchange(config: oidc.Configuration, callbackUrl: string, request: AuthRequest) {
  return oidc.authorizationCodeGrant(config, new URL(callbackUrl), {
    pkceCodeVerifier: request.verifier, expectedState: request.state, expectedNonce: request.nonce, idTokenExpected: true,
  });
}
