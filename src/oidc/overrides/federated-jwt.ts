import { createHash, generateKeyPairSync, randomUUID, type KeyObject } from 'node:crypto';
import * as querystring from 'node:querystring';
import type { Readable } from 'node:stream';
import { SignJWT } from 'jose';
import { LRUCache } from 'lru-cache';
import type { Adapter, AdapterPayload, KoaContextWithOIDC, Provider } from 'oidc-provider';
import { FederationRefused, type FederatedAuthentication } from '../../identity/federation/index.ts';

export const JWT_BEARER = 'urn:ietf:params:oauth:client-assertion-type:jwt-bearer';

/** What the override needs from the domain (identity/federation/authenticator.ts). */
export interface FederatedClientAuth {
  isFederated(clientId: string): Promise<boolean>;
  /** Resolves to the accepting credential, or rejects with a FederationRefused whose message is safe to answer. */
  authenticate(clientId: string, token: string): Promise<FederatedAuthentication>;
}

/** Told of every refused federated authentication (audit), with the answered description. */
export type FederationRefusedSink = (ctx: KoaContextWithOIDC, clientId: string, description: string) => void;

/** The routes that authenticate clients (those oidc-provider registered: pathFor throws for the others). */
const CLIENT_AUTH_ROUTES = ['token', 'introspection', 'revocation', 'pushed_authorization_request', 'device_authorization', 'backchannel_authentication'];

/** oidc-provider's own limit for a urlencoded body (lib/shared/selective_body.js). */
const BODY_LIMIT = 56 * 1024;

/** The external tokens authenticated on a request, for the token audit (keyed by the Koa context). */
const authenticated = new WeakMap<object, FederatedAuthentication>();

/** The federated authentication of this request, if any (the token audit names credential, iss, sub). */
export function federatedAuthenticationOf(ctx: object): FederatedAuthentication | undefined {
  return authenticated.get(ctx);
}

/**
 * The key with which this process vouches, to oidc-provider, for a federated_jwt client it has
 * authenticated. Made once per process, never stored, never published: the private half
 * exists only in this object, so nobody outside can produce an assertion it verifies.
 */
export class InternalAssertionKey {
  readonly #privateKey: KeyObject;
  /**
   * ReplayDetection ids of assertions signed and not yet checked. Each is used once, in the
   * request that made it; a request that ends before oidc-provider checks it leaves an entry
   * that ages out. Bounded.
   */
  readonly #pending = new LRUCache<string, true>({ max: 10_000, ttl: 120_000 });
  readonly kid = `keyward-federation-${randomUUID()}`;
  readonly jwks: { keys: Record<string, unknown>[] };

  constructor() {
    const { privateKey, publicKey } = generateKeyPairSync('ec', { namedCurve: 'P-256' });
    this.#privateKey = privateKey;
    this.jwks = { keys: [{ ...publicKey.export({ format: 'jwk' }), kid: this.kid, alg: 'ES256', use: 'sig' }] };
  }

  /** An RFC 7523 private_key_jwt assertion for `clientId`, valid for 60 s, for `audience` alone. */
  sign(clientId: string, audience: string): Promise<string> {
    const jti = randomUUID();
    this.#pending.set(replayId(clientId, jti), true);
    return new SignJWT({})
      .setProtectedHeader({ alg: 'ES256', kid: this.kid })
      .setIssuer(clientId).setSubject(clientId).setAudience(audience)
      .setJti(jti).setIssuedAt().setExpirationTime('60s')
      .sign(this.#privateKey);
  }

  /** True, once, for the ReplayDetection id of an assertion this key signed. */
  takeReplayId(id: string): boolean {
    return this.#pending.delete(id);
  }
}

/** oidc-provider's ReplayDetection id of an assertion (lib/models/replay_detection.js: sha256 of iss + jti). */
function replayId(iss: string, jti: string): string {
  return createHash('sha256').update(`${iss}${jti}`).digest('base64url');
}

/**
 * The ReplayDetection storage with this process's own assertions kept out of the store. An
 * internal assertion never leaves the process and carries a fresh random jti, so it cannot be
 * replayed; checking it in the store (three round trips) would double the cost of a federated
 * authentication for nothing. Every other id (private_key_jwt assertions, DPoP proofs) goes to
 * the store as before.
 */
export function internalAssertionReplay(stored: Adapter, key: InternalAssertionKey): Adapter {
  const skipped = new LRUCache<string, true>({ max: 10_000, ttl: 120_000 });
  return {
    find: async (id): Promise<AdapterPayload | undefined> => {
      if (!key.takeReplayId(id)) return (await stored.find(id)) ?? undefined;
      skipped.set(id, true);
      return undefined;
    },
    upsert: async (id, payload, expiresIn) => {
      if (!skipped.delete(id)) await stored.upsert(id, payload, expiresIn);
    },
    findByUid: (uid) => stored.findByUid(uid),
    findByUserCode: (userCode) => stored.findByUserCode(userCode),
    destroy: (id) => stored.destroy(id),
    revokeByGrantId: (grantId) => stored.revokeByGrantId(grantId),
    consume: (id) => stored.consume(id),
  };
}


/**
 * `token_endpoint_auth_method: federated_jwt` (DESIGN.md "Workloads without secrets").
 * oidc-provider has no hook for a client authentication method of our own: its
 * `authenticateClient` (lib/shared/client_auth.js) takes the client id of an assertion from
 * its `sub` (an external token's `sub` is the workload, not the client) and knows a closed list
 * of methods. So, before the route runs, on the endpoints that authenticate clients, this
 * middleware reads the urlencoded body (as Keyward's edge handed it on in `req.body`, or from
 * the stream) and, for a `client_id` whose method is
 * federated_jwt, verifies the external `client_assertion`; on success it replaces it with a
 * 60-second private_key_jwt assertion signed by this process's InternalAssertionKey, which is
 * the only key such a client is registered with (oidc/clients.ts). oidc-provider then does
 * everything else as for any private_key_jwt client, on every endpoint and grant. It reads the
 * rewritten body from `req.body` (selective_body.js, when the request stream was consumed).
 * A failed verification is answered here, 401 invalid_client.
 *
 * Never without a valid assertion: a federated client's registered key is one nobody outside
 * this process holds, so a secret, a missing assertion or an assertion of any other key fails
 * in oidc-provider's own checks, whether or not this middleware ran.
 *
 * Requests carrying an Authorization header are left alone (a federated client never uses
 * one; oidc-provider refuses the combination), so client_secret_basic traffic never pays
 * for this.
 */
export function installFederatedJwt(provider: Provider, auth: FederatedClientAuth, key: InternalAssertionKey, refused?: FederationRefusedSink): void {
  const paths = new Set<string>();
  for (const route of CLIENT_AUTH_ROUTES) {
    try {
      paths.add(provider.pathFor(route));
    } catch {
      // Not enabled on this provider.
    }
  }
  provider.use(async (ctx, next) => {
    if (ctx.method !== 'POST' || !paths.has(ctx.path) || ctx.get('authorization') || !ctx.is('application/x-www-form-urlencoded')) {
      await next();
      return;
    }
    const req = ctx.req as typeof ctx.req & { body?: unknown };
    let text: string | undefined;
    if (Buffer.isBuffer(req.body)) {
      // Keyward's edge has read it already (http/app.ts).
      text = req.body.toString('utf8');
    } else if (typeof req.body === 'string') {
      text = req.body;
    } else if (req.readable) {
      text = await readBody(req, ctx.request.length);
      if (text === undefined) return answer(ctx, 400, 'invalid_request', 'failed to parse the request body');
      req.body = Buffer.from(text, 'utf8');
    } else {
      await next();
      return;
    }
    // Most token requests (no client assertion at all) are not parsed here a second time.
    if (!text.includes('client_assertion_type=')) {
      await next();
      return;
    }
    const params = querystring.parse(text);
    const clientId = params.client_id;
    const assertion = params.client_assertion;
    if (params.client_assertion_type !== JWT_BEARER || typeof clientId !== 'string' || typeof assertion !== 'string' || !(await auth.isFederated(clientId))) {
      await next();
      return;
    }
    let result: FederatedAuthentication;
    try {
      result = await auth.authenticate(clientId, assertion);
    } catch (error) {
      if (!(error instanceof FederationRefused)) throw error;
      const description = `federated_jwt: ${error.message}`;
      refused?.(ctx as KoaContextWithOIDC, clientId, description);
      ctx.set('WWW-Authenticate', `Basic realm="${provider.issuer}", error="invalid_client"`);
      return answer(ctx, 401, 'invalid_client', description);
    }
    params.client_assertion = await key.sign(clientId, provider.issuer);
    req.body = Buffer.from(querystring.stringify(params), 'utf8');
    authenticated.set(ctx, result);
    await next();
  });
}

function answer(ctx: { status: number; body: unknown; set(name: string, value: string): void }, status: number, error: string, description: string): void {
  ctx.status = status;
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description };
}

/** The body as UTF-8 text, or undefined when it is larger than oidc-provider would read or shorter than announced. */
async function readBody(req: Readable, length: number | undefined): Promise<string | undefined> {
  if (length !== undefined && length > BODY_LIMIT) return undefined;
  const chunks: Buffer[] = [];
  let received = 0;
  // Not destroyed on an early return: the answer still goes out on this connection.
  for await (const chunk of req.iterator({ destroyOnReturn: false }) as AsyncIterable<Buffer>) {
    received += chunk.length;
    if (received > BODY_LIMIT) return undefined;
    chunks.push(chunk);
  }
  if (length !== undefined && received !== length) return undefined;
  return Buffer.concat(chunks, received).toString('utf8');
}
