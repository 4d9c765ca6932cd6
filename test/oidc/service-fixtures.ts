import { createRemoteJWKSet, jwtVerify, type JWTPayload } from 'jose';
import * as oidc from 'openid-client';
import type { Keyward } from '../../src/app.ts';

export const ORDERS = 'https://orders.internal';

/** A resource server, a role that permits part of its scopes, and a service client holding the role. */
export async function seedOrders(keyward: Keyward, options: { ttl?: number; alg?: 'ES256' | 'RS256' | 'EdDSA' } = {}): Promise<void> {
  await keyward.resources.ensure({
    identifier: ORDERS,
    name: 'Orders API',
    scopes: ['orders:read', 'orders:write', 'orders:admin'],
    access_token_ttl: options.ttl ?? 300,
    ...(options.alg ? { signing_alg: options.alg } : {}),
  });
  await keyward.roles.ensure({ name: 'orders-reader', permissions: ['orders:read', 'invoices:read'] });
  await keyward.roles.ensure({ name: 'orders-writer', permissions: ['orders:write'] });
}

/** An openid-client Configuration for a client at `url`, allowed to talk plain http to loopback. */
export async function relyingParty(url: string, clientId: string, auth: oidc.ClientAuth, metadata: Partial<oidc.ClientMetadata> = {}): Promise<oidc.Configuration> {
  return oidc.discovery(new URL(url), clientId, metadata, auth, { execute: [oidc.allowInsecureRequests] });
}

/** Verifies an access token the way an API would: JWKS from discovery, RFC 9068 typ, iss, aud. */
export async function verifyAccessToken(url: string, token: string, audience: string): Promise<{ payload: JWTPayload; header: Record<string, unknown> }> {
  const jwks = createRemoteJWKSet(new URL(`${url}/jwks`));
  const { payload, protectedHeader } = await jwtVerify(token, jwks, { issuer: url, audience, typ: 'at+jwt' });
  return { payload, header: protectedHeader };
}

export function basic(clientId: string, secret: string): string {
  return `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`;
}

/** A raw form POST (for the error cases openid-client would refuse to send or hide). */
export async function postForm(url: string, path: string, body: Record<string, string>, headers: Record<string, string> = {}): Promise<{ status: number; headers: Headers; json: Record<string, unknown> | undefined; text: string }> {
  const res = await fetch(`${url}${path}`, {
    method: 'POST',
    headers: { 'content-type': 'application/x-www-form-urlencoded', accept: 'application/json', ...headers },
    body: new URLSearchParams(body),
  });
  const text = await res.text();
  let json: Record<string, unknown> | undefined;
  try { json = JSON.parse(text) as Record<string, unknown>; } catch { json = undefined; }
  return { status: res.status, headers: res.headers, json, text };
}

/** Audit events of a type, after flushing the buffered writer. */
export async function auditEvents(keyward: Keyward, type: string): Promise<{ actor: string | null; subject: string | null; outcome: string; details: Record<string, unknown> }[]> {
  await keyward.audit.flush();
  const rows = await keyward.store.prisma.auditEvent.findMany({ where: { type }, orderBy: { id: 'asc' } });
  return rows.map((r) => ({ actor: r.actor, subject: r.subject, outcome: r.outcome, details: r.details as Record<string, unknown> }));
}
