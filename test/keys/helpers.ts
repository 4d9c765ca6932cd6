import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { createLocalJWKSet, decodeProtectedHeader, jwtVerify, type JWK } from 'jose';
import type { TestServer } from '../support/harness.ts';

/** Helpers shared by the key-lifecycle tests: tokens from the bootstrap admin, the JWKS as served. */

export const ADMIN_ID = 'lifecycle-test-admin';
export const ADMIN_SECRET = randomBytes(32).toString('base64url');
export const adminEnv = { KEYWARD_BOOTSTRAP_ADMIN_CLIENT_ID: ADMIN_ID, KEYWARD_BOOTSTRAP_ADMIN_CLIENT_SECRET: ADMIN_SECRET };

export interface Jwks {
  keys: (JWK & { kid: string })[];
}

export async function fetchJwks(url: string): Promise<{ jwks: Jwks; cacheControl: string | null }> {
  const res = await fetch(`${url}/jwks`);
  assert.equal(res.status, 200);
  return { jwks: (await res.json()) as Jwks, cacheControl: res.headers.get('cache-control') };
}

export async function kidsInJwks(url: string): Promise<string[]> {
  return (await fetchJwks(url)).jwks.keys.map((k) => k.kid).sort();
}

/** A JWT access token (ES256 by default for the admin API) from client credentials. */
export async function adminToken(url: string): Promise<string> {
  const res = await fetch(`${url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${ADMIN_ID}:${ADMIN_SECRET}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource: `${url}/admin` }),
  });
  const body = (await res.json()) as { access_token?: string };
  assert.equal(res.status, 200, JSON.stringify(body));
  return body.access_token!;
}

export const kidOf = (jwt: string): string => decodeProtectedHeader(jwt).kid!;

/** Verifies `jwt` as a relying party would: against the JWKS the server publishes right now. */
export async function verifiesNow(url: string, jwt: string): Promise<boolean> {
  const { jwks } = await fetchJwks(url);
  try {
    await jwtVerify(jwt, createLocalJWKSet(jwks), { issuer: url, audience: `${url}/admin` });
    return true;
  } catch (error) {
    if ((error as { code?: string }).code === 'ERR_JWKS_NO_MATCHING_KEY') return false;
    throw error;
  }
}

export interface KeyRow {
  kid: string;
  alg: string;
  state: string;
  encrypted_jwk: string | null;
}

export async function keyRows(server: TestServer): Promise<KeyRow[]> {
  return server.keyward.store.sql.query<KeyRow>('SELECT kid, alg, state, encrypted_jwk FROM signing_keys ORDER BY created_at, kid');
}

export async function keyTransitionEvents(server: TestServer): Promise<{ subject: string; actor: string | null; details: Record<string, unknown> }[]> {
  await server.keyward.audit.flush();
  return server.keyward.store.sql.query(
    "SELECT subject, actor, details FROM audit_events WHERE type = 'key.transition' ORDER BY at, id",
  );
}

/** The key of `alg` in `state` (exactly one expected). */
export async function only(server: TestServer, alg: string, state: string): Promise<KeyRow> {
  const rows = (await keyRows(server)).filter((r) => r.alg === alg && r.state === state);
  assert.equal(rows.length, 1, `expected one ${state} ${alg} key, found ${rows.length}`);
  return rows[0]!;
}
