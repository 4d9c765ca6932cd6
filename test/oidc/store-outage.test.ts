import assert from 'node:assert/strict';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { after, before, test } from 'node:test';
import { exportJWK, generateKeyPair } from 'jose';
import Provider, { type Adapter, type JWKS } from 'oidc-provider';
import { answerStoreOutage } from '../../src/oidc/store-outage.ts';
import { StoreUnavailable } from '../../src/store/unavailable.ts';
import { basic, postForm } from './service-fixtures.ts';

/**
 * The contract src/oidc/store-outage.ts relies on: oidc-provider answers an unexpected error
 * from its adapter as 500 `server_error` and emits `server_error` with the request's context
 * before a `provider.use` middleware sees the response. With the mapping installed, the same
 * failure caused by an unreachable store is RFC 6749's 503 `temporarily_unavailable`; any other
 * failure stays a 500.
 */
const SECRET = 'the-stored-secret';
let jwks: JWKS;

/** Every write fails the way the store does while the database is away (or with `other`). */
function failingAdapter(failure: () => Error): new (name: string) => Adapter {
  return class {
    async upsert(): Promise<void> {
      throw failure();
    }
    async find(): Promise<undefined> {
      throw failure();
    }
    async findByUserCode(): Promise<undefined> {
      return undefined;
    }
    async findByUid(): Promise<undefined> {
      return undefined;
    }
    async consume(): Promise<void> {}
    async destroy(): Promise<void> {}
    async revokeByGrantId(): Promise<void> {}
  };
}

async function serve(failure: () => Error, mapped: boolean): Promise<{ url: string; server: Server }> {
  const provider = new Provider('http://127.0.0.1', {
    jwks,
    adapter: failingAdapter(failure),
    clients: [{ client_id: 'service', client_secret: SECRET, grant_types: ['client_credentials'], response_types: [], redirect_uris: [] }],
    features: { devInteractions: { enabled: false }, clientCredentials: { enabled: true } },
  });
  if (mapped) answerStoreOutage(provider);
  const handler = provider.callback();
  const server = createServer((req, res) => void handler(req, res));
  await new Promise<void>((resolve) => server.listen(0, '127.0.0.1', resolve));
  return { url: `http://127.0.0.1:${(server.address() as AddressInfo).port}`, server };
}

const servers: Server[] = [];
before(async () => {
  const { privateKey } = await generateKeyPair('RS256', { extractable: true });
  jwks = { keys: [{ ...(await exportJWK(privateKey)), kid: 'k1', alg: 'RS256', use: 'sig' }] };
});
after(async () => {
  for (const server of servers) await new Promise((resolve) => server.close(resolve));
});

async function token(failure: () => Error, mapped: boolean) {
  const { url, server } = await serve(failure, mapped);
  servers.push(server);
  return postForm(url, '/token', { grant_type: 'client_credentials' }, { authorization: basic('service', SECRET) });
}

test('oidc-provider (bare): a failing adapter is 500 server_error; that is what the mapping turns into 503', async () => {
  const res = await token(() => new StoreUnavailable(), false);
  assert.equal(res.status, 500, res.text);
  assert.equal(res.json?.error, 'server_error');
});

test('RFC 6749 §4.1.2.1: the store unreachable at the token endpoint is 503 temporarily_unavailable with Retry-After', async () => {
  const res = await token(() => Object.assign(new Error('connect ECONNREFUSED 127.0.0.1:5432'), { code: 'ECONNREFUSED' }), true);
  assert.equal(res.status, 503, res.text);
  assert.equal(res.json?.error, 'temporarily_unavailable');
  assert.equal(res.headers.get('retry-after'), '2');
  assert.equal(res.headers.get('cache-control'), 'no-store');
  assert.doesNotMatch(res.text, /ECONNREFUSED|5432/, 'no internals in the answer');
});

test('any other failure stays 500 server_error (a bug is not an outage)', async () => {
  const res = await token(() => new TypeError('a bug'), true);
  assert.equal(res.status, 500, res.text);
  assert.equal(res.json?.error, 'server_error');
});
