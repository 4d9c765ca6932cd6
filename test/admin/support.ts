import assert from 'node:assert/strict';
import { ADMIN_READ_ROLE, ADMIN_ROLE } from '../../src/identity/admin-roles.ts';
import type { TestServer } from '../support/harness.ts';
import { leakedForms, secretForms } from '../support/secrets.ts';

/** Admin API access for tests: real clients, real tokens from the real token endpoint. */
export interface AdminClient {
  token: string;
  clientId: string;
  secret: string;
}

export async function clientToken(server: TestServer, clientId: string, secret: string, resource = `${server.url}/admin`): Promise<Response> {
  presented.push({ clientId, secret });
  return fetch(`${server.url}/token`, {
    method: 'POST',
    headers: {
      authorization: `Basic ${Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')}`,
      'content-type': 'application/x-www-form-urlencoded',
    },
    body: new URLSearchParams({ grant_type: 'client_credentials', resource }),
  });
}

/** Creates a confidential admin-console client with `roles` and gets it an access token for the admin API. */
export async function adminClient(server: TestServer, roles: string[] = [ADMIN_ROLE]): Promise<AdminClient> {
  const { client, client_secret } = await server.keyward.clients.create({
    client_name: `test ${roles.join(',') || 'no roles'}`,
    grant_types: ['client_credentials'],
    roles,
    first_party: true,
    admin_console: true,
  });
  const res = await clientToken(server, client.client_id, client_secret!);
  assert.equal(res.status, 200, await res.clone().text());
  const { access_token } = (await res.json()) as { access_token: string };
  return { token: access_token, clientId: client.client_id, secret: client_secret! };
}

export const readOnlyRoles = [ADMIN_READ_ROLE];

export interface Call {
  status: number;
  headers: Headers;
  body: any;
  text: string;
}

const SAFE_METHODS = new Set(['GET', 'HEAD', 'OPTIONS']);

/** Connection-level retries call() made; reported on stderr as they happen. */
export const connectionRetries = { count: 0 };

/** One admin API call; `body` is sent as JSON unless it is a string (sent raw). */
export async function call(server: TestServer, token: string | undefined, method: string, path: string, body?: unknown, headers: Record<string, string> = {}): Promise<Call> {
  const send = () => fetch(`${server.url}/admin/v1${path}`, {
    method,
    headers: {
      ...(token ? { authorization: `Bearer ${token}` } : {}),
      ...(body !== undefined ? { 'content-type': 'application/json' } : {}),
      ...headers,
    },
    ...(body !== undefined ? { body: typeof body === 'string' ? body : JSON.stringify(body) } : {}),
  });
  let res: Response;
  try {
    res = await send();
  } catch (error) {
    // undici may reuse a keep-alive socket the server closes at that instant (seen on a loaded
    // machine): the request was never answered. Only a safe method (RFC 9110 §9.2.1) is sent
    // again, and every such retry is counted and reported; anything else fails the test.
    if (!(error instanceof TypeError) || !SAFE_METHODS.has(method.toUpperCase())) throw error;
    connectionRetries.count++;
    process.stderr.write(`# ${method} ${path}: ${error.cause instanceof Error ? error.cause.message : error.message}; sent again (retry ${connectionRetries.count})\n`);
    res = await send();
  }
  const text = await res.text();
  transcript.push(text);
  let parsed: unknown;
  try {
    parsed = text ? JSON.parse(text) : undefined;
  } catch {
    parsed = undefined;
  }
  return { status: res.status, headers: res.headers, body: parsed, text };
}

/** Asserts an RFC 9457 problem with `status`. */
export function assertProblem(res: Call, status: number, message?: string): void {
  assert.equal(res.status, status, res.text);
  assert.match(res.headers.get('content-type') ?? '', /^application\/problem\+json/);
  assert.equal(res.body.status, status);
  assert.equal(typeof res.body.type, 'string');
  assert.equal(typeof res.body.title, 'string');
  assert.equal(typeof res.body.detail, 'string');
  if (message) assert.match(res.body.detail, new RegExp(message));
}

/** Names of the fields a validation problem reports. */
export function failingFields(res: Call): string[] {
  return ((res.body?.errors ?? []) as { field: string }[]).map((e) => e.field);
}

/** Every admin response body this test file received, to prove no secret or hash leaks. */
export const transcript: string[] = [];

/**
 * No stored hash, sealed private key or password appears in any response or log line, and
 * each issued client secret appears exactly once: in the response that issued it.
 */
export async function assertNoLeaks(server: TestServer, passwords: string[] = []): Promise<void> {
  await server.keyward.audit.flush();
  const prisma = server.keyward.store.prisma;
  const hashes = [
    ...(await prisma.clientSecret.findMany({ select: { hash: true } })).map((r) => r.hash),
    ...(await prisma.user.findMany({ select: { passwordHash: true } })).map((r) => r.passwordHash),
    ...(await prisma.signingKey.findMany({ select: { encryptedJwk: true } })).map((r) => r.encryptedJwk).filter((v): v is string => !!v),
  ];
  assert.ok(hashes.length > 0);
  const logs = server.logs.text;
  const responses = transcript.join('\n');
  for (const hash of hashes) {
    assert.ok(!responses.includes(hash), 'a stored hash or sealed key appeared in a response');
    assert.ok(!logs.includes(hash), 'a stored hash or sealed key appeared in a log line');
  }
  for (const password of passwords) {
    assert.ok(!responses.includes(password), 'a password appeared in a response');
    assert.ok(!logs.includes(password), 'a password appeared in a log line');
  }
  const secrets = transcript.flatMap((text) => [...text.matchAll(/"client_secret":"([^"]+)"/g)].map((m) => m[1]!));
  for (const secret of secrets) {
    assert.equal(transcript.filter((text) => text.includes(secret)).length, 1, 'a client secret was shown more than once');
  }
  // Not only the secret itself: the Basic credentials and form bodies it travelled in, under
  // the id of whichever client it belongs to.
  const clientIds = (await prisma.client.findMany({ select: { clientId: true } })).map((c) => c.clientId);
  const issued = [...secrets.flatMap((secret) => clientIds.map((clientId) => ({ clientId, secret }))), ...presented];
  assert.ok(issued.length > 0);
  for (const { clientId, secret } of issued) {
    assert.deepEqual(leakedForms(logs, secretForms(clientId, secret)), [], `a client secret of ${clientId} appeared in a log line`);
  }
}

/** Every client id and secret sent to the token endpoint by clientToken(). */
const presented: { clientId: string; secret: string }[] = [];
