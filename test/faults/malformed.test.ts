import assert from 'node:assert/strict';
import { createHash, randomBytes } from 'node:crypto';
import { once } from 'node:events';
import net from 'node:net';
import { after, before, test } from 'node:test';
import { createTestDatabase, startServer, type TestDatabase, type TestServer } from '../support/harness.ts';
import { adminClient, type AdminClient } from '../admin/support.ts';
import { auditEvents, basic, ORDERS, postForm, seedOrders } from '../oidc/service-fixtures.ts';

/**
 * Issue 11 §9: a few hundred malformed requests (NUL bytes, invalid UTF-8, duplicate parameters,
 * huge headers and bodies, wrong content types) at every endpoint: never a 5xx, and audit events
 * after them are still written. Sent as raw bytes over a socket, so nothing on the client side
 * normalizes them.
 */

let db: TestDatabase;
let server: TestServer;
let admin: AdminClient;
let service: { id: string; secret: string };
let interaction: { path: string; cookie: string };

const REDIRECT = 'http://127.0.0.1:9/cb';

before(async () => {
  db = await createTestDatabase();
  server = await startServer(db);
  await seedOrders(server.keyward);
  admin = await adminClient(server);
  const { client, client_secret } = await server.keyward.clients.create({ client_name: 'malformed', grant_types: ['client_credentials'], roles: ['orders-reader'] });
  service = { id: client.client_id, secret: client_secret! };
  const { client: app } = await server.keyward.clients.create({
    client_name: 'browser app', grant_types: ['authorization_code'], token_endpoint_auth_method: 'none', redirect_uris: [REDIRECT], first_party: true,
  });
  // A live interaction, so the login and consent forms reach their real handlers.
  const verifier = randomBytes(32).toString('base64url');
  const auth = await fetch(`${server.url}/auth?${new URLSearchParams({
    client_id: app.client_id, response_type: 'code', scope: 'openid', redirect_uri: REDIRECT,
    code_challenge: createHash('sha256').update(verifier).digest('base64url'), code_challenge_method: 'S256',
  })}`, { redirect: 'manual' });
  const location = auth.headers.get('location') ?? '';
  assert.match(location, /\/interaction\//, `expected an interaction, got ${auth.status}`);
  interaction = { path: new URL(location, server.url).pathname, cookie: auth.headers.getSetCookie().map((c) => c.split(';')[0]).join('; ') };
});
after(async () => {
  await server?.stop();
  await db?.drop();
});

/** Sends exactly these bytes; answers the status code, or 'reset' when the server closed without an answer. */
async function raw(head: string, body: Buffer = Buffer.alloc(0)): Promise<number | 'reset'> {
  const socket = net.connect(Number(new URL(server.url).port), '127.0.0.1');
  await once(socket, 'connect');
  let response = '';
  socket.on('data', (chunk: Buffer) => (response += chunk.toString('latin1')));
  socket.on('error', () => undefined);
  const closed = once(socket, 'close');
  socket.write(Buffer.concat([Buffer.from(head, 'latin1'), body]));
  const timer = setTimeout(() => socket.destroy(), 15_000);
  await closed;
  clearTimeout(timer);
  const status = /^HTTP\/1\.1 (\d{3})/.exec(response)?.[1];
  return status ? Number(status) : 'reset';
}

function request(method: string, path: string, headers: Record<string, string>, body?: Buffer): Promise<number | 'reset'> {
  const lines = [`${method} ${path} HTTP/1.1`, `Host: ${new URL(server.url).host}`, 'Connection: close'];
  for (const [name, value] of Object.entries(headers)) lines.push(`${name}: ${value}`);
  if (body && !('Transfer-Encoding' in headers)) lines.push(`Content-Length: ${body.length}`);
  return raw(`${lines.join('\r\n')}\r\n\r\n`, body);
}

const FORM = { 'Content-Type': 'application/x-www-form-urlencoded' };
const JSON_TYPE = { 'Content-Type': 'application/json' };

/** What each endpoint gets: the malformed variants, as (name, method, path suffix, headers, body). */
function variants(base: string): [string, string, Record<string, string>, Buffer | undefined][] {
  const b = (text: string) => Buffer.from(text, 'latin1');
  return [
    ['NUL in the query', `${base}?client_id=%00&x=1`, {}, undefined],
    ['invalid UTF-8 in the query', `${base}?client_id=%FF%FE&redirect_uri=%C3%28`, {}, undefined],
    ['overlong UTF-8 NUL in the query', `${base}?client_id=%C0%80`, {}, undefined],
    ['NUL in a path segment', `${base}%00`, {}, undefined],
    ['NUL in a form body', base, FORM, b('grant_type=client_credentials%00&client_id=a%00b&token=t%00&username=u%00&password=p')],
    ['raw invalid UTF-8 in a form body', base, FORM, Buffer.concat([b('client_id='), Buffer.from([0xff, 0xfe, 0xc3, 0x28]), b('&token=x')])],
    ['duplicate parameters', base, FORM, b('grant_type=client_credentials&grant_type=authorization_code&client_id=a&client_id=b&token=1&token=2&resource=x&resource=y')],
    ['a 55,000-character parameter', base, FORM, b(`grant_type=${'g'.repeat(55_000)}`)],
    ['a 1 MiB form body', base, FORM, Buffer.alloc(1024 * 1024, 'a')],
    ['a 1 MiB chunked body', base, { ...FORM, 'Transfer-Encoding': 'chunked' }, Buffer.concat([b(`100000\r\n`), Buffer.alloc(0x100000, 'a'), b('\r\n0\r\n\r\n')])],
    ['a 64 KiB header', base, { 'X-Big': 'h'.repeat(64 * 1024) }, undefined],
    ['JSON where a form is expected', base, JSON_TYPE, b('{"client_id":"a\\u0000b","grant_type":"client_credentials"}')],
    ['text/plain body', base, { 'Content-Type': 'text/plain' }, b('grant_type=client_credentials')],
    ['multipart body', base, { 'Content-Type': 'multipart/form-data; boundary=x' }, b('--x\r\nContent-Disposition: form-data; name="a"\r\n\r\n\0\r\n--x--\r\n')],
    ['invalid JSON', base, JSON_TYPE, b('{"a":')],
    ['JSON with NUL and lone surrogates', base, JSON_TYPE, b('{"client_name":"a\\u0000","name":"\\ud800","roles":["\\udfff"]}')],
    ['NUL in Basic credentials', base, { ...FORM, Authorization: `Basic ${Buffer.from('a\0b:c').toString('base64')}` }, b('grant_type=client_credentials&token=x')],
    ['invalid UTF-8 in Basic credentials', base, { ...FORM, Authorization: `Basic ${Buffer.from([0xff, 0x3a, 0x61]).toString('base64')}` }, b('token=x')],
    ['garbage Basic credentials', base, { ...FORM, Authorization: 'Basic !!!not-base64%00' }, b('token=x')],
    ['a Bearer token with invalid UTF-8', base, { Authorization: 'Bearer \xff\xfe%00' }, undefined],
    ['NUL in a cookie', base, { Cookie: '_session=%00; _interaction=%FF' }, undefined],
    ['a charset the body does not have', base, { 'Content-Type': 'application/x-www-form-urlencoded; charset=utf-16' }, b('client_id=a')],
  ];
}

/** Every endpoint a caller can reach, with the methods it answers. */
function endpoints(): [string, string][] {
  const uid = interaction.path;
  return [
    ['POST', '/token'], ['GET', '/token'], ['POST', '/token/introspection'], ['POST', '/token/revocation'],
    ['GET', '/auth'], ['POST', '/auth'], ['GET', '/session/end'], ['POST', '/session/end/confirm'], ['POST', '/request'],
    ['GET', '/me'], ['GET', '/jwks'], ['GET', '/.well-known/openid-configuration'],
    ['GET', uid], ['POST', `${uid}/login`], ['POST', `${uid}/consent`], ['POST', '/interaction/unknown-uid/login'],
    ['GET', '/admin/v1/clients'], ['POST', '/admin/v1/clients'], ['POST', '/admin/v1/users'], ['POST', '/admin/v1/roles'],
    ['PATCH', `/admin/v1/clients/${service.id}`], ['GET', '/admin/v1/audit'],
    ['GET', '/healthz'], ['GET', '/readyz'], ['GET', '/metrics'],
  ];
}

test('issue 11 §9: malformed requests at every endpoint never answer 5xx, and the audit trail is written after them', async () => {
  const seen = new Map<string, number>();
  const failures: string[] = [];
  let sent = 0;
  for (const [method, path] of endpoints()) {
    const isAdmin = path.startsWith('/admin/');
    const isInteraction = path.startsWith(interaction.path);
    for (const [name, target, headers, body] of variants(path)) {
      const extra: Record<string, string> = {};
      // Half of the admin requests carry a valid token, so the body reaches the validating handlers.
      if (isAdmin && !('Authorization' in headers) && sent % 2 === 0) extra.Authorization = `Bearer ${admin.token}`;
      if (isInteraction && !('Cookie' in headers)) extra.Cookie = interaction.cookie;
      const status = await request(method, target, { ...headers, ...extra }, body);
      sent += 1;
      const key = String(status);
      seen.set(key, (seen.get(key) ?? 0) + 1);
      const hugeBody = name.includes('1 MiB') || name.includes('64 KiB');
      if (status === 'reset' ? !hugeBody : status >= 500) failures.push(`${method} ${path} (${name}): ${status}`);
    }
  }
  process.stderr.write(`# malformed: ${sent} requests, statuses ${JSON.stringify(Object.fromEntries(seen))}\n`);
  assert.ok(sent >= 300, `sent ${sent}`);
  assert.deepEqual(failures, [], 'no 5xx (nor a dropped connection without an answer)');
  assert.equal(server.logs.errors().length, 0, `error log lines:\n${server.logs.errors().slice(0, 5).join('\n')}`);

  // Audit events after all that are still written.
  const res = await postForm(server.url, '/token', { grant_type: 'client_credentials', resource: ORDERS }, { authorization: basic(service.id, service.secret) });
  assert.equal(res.status, 200, res.text);
  const issued = (await auditEvents(server.keyward, 'token.issued')).filter((e) => e.outcome === 'success' && e.actor === service.id);
  assert.equal(issued.length, 1);
  assert.deepEqual(server.keyward.audit.stats(), { buffered: 0, dropped: { overflow: 0, unstorable: 0 } });
});
