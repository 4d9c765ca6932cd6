import { once } from 'node:events';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

/**
 * A stand-in issuer for keyward/verify's unit tests: a real HTTP server with discovery and a
 * JWKS whose keys the test changes, counts, delays and breaks. (Tests against Keyward itself
 * are in gateways.test.ts.)
 */
export interface SigningKey {
  kid: string;
  alg: 'ES256' | 'RS256' | 'EdDSA';
  privateKey: CryptoKey;
  jwk: JWK;
}

export async function signingKey(kid: string, alg: SigningKey['alg'] = 'ES256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  return { kid, alg, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

export class TestIssuer {
  readonly #server: Server;
  url = '';
  /** Published keys. */
  keys: SigningKey[] = [];
  cacheControl: string | undefined = 'public, max-age=60';
  /** Answer the JWKS with this status instead (e.g. 503 for an outage). */
  failWith: number | undefined;
  /** Hold each JWKS response this long (to make concurrent misses overlap). */
  delayMs = 0;
  jwksPath = '/keys/jwks.json';
  /** Issuer named by the discovery document (default: the real one). */
  discoveryIssuer: string | undefined;
  readonly hits = { discovery: 0, jwks: 0 };

  constructor() {
    this.#server = createServer((req, res) => {
      void (async () => {
        if (req.url === '/.well-known/openid-configuration') {
          this.hits.discovery++;
          res.setHeader('content-type', 'application/json');
          res.end(JSON.stringify({ issuer: this.discoveryIssuer ?? this.url, jwks_uri: `${this.url}${this.jwksPath}` }));
          return;
        }
        if (req.url === this.jwksPath) {
          this.hits.jwks++;
          if (this.delayMs) await new Promise((r) => setTimeout(r, this.delayMs));
          if (this.failWith) {
            res.statusCode = this.failWith;
            res.end();
            return;
          }
          res.setHeader('content-type', 'application/json');
          if (this.cacheControl) res.setHeader('cache-control', this.cacheControl);
          res.end(JSON.stringify({ keys: this.keys.map((k) => k.jwk) }));
          return;
        }
        res.statusCode = 404;
        res.end();
      })();
    });
  }

  static async start(): Promise<TestIssuer> {
    const issuer = new TestIssuer();
    issuer.#server.listen(0, '127.0.0.1');
    await once(issuer.#server, 'listening');
    issuer.url = `http://127.0.0.1:${(issuer.#server.address() as AddressInfo).port}`;
    issuer.keys = [await signingKey('k1')];
    return issuer;
  }

  async stop(): Promise<void> {
    this.#server.closeAllConnections();
    await new Promise((r) => this.#server.close(r));
  }

  resetHits(): void {
    this.hits.discovery = 0;
    this.hits.jwks = 0;
  }

  /** A token signed by `key` (default: the first published key), RFC 9068-shaped unless overridden. */
  async token(claims: JWTPayload = {}, options: { key?: SigningKey; typ?: string | null; now?: number; header?: Record<string, unknown> } = {}): Promise<string> {
    const key = options.key ?? this.keys[0]!;
    const iat = Math.floor((options.now ?? Date.now()) / 1000);
    const header = { alg: key.alg, kid: key.kid, ...(options.typ === null ? {} : { typ: options.typ ?? 'at+jwt' }), ...options.header };
    return new SignJWT({
      iss: this.url, aud: API, sub: 'svc-orders', client_id: 'svc-orders', iat, exp: iat + 300,
      jti: `jti-${Math.random().toString(36).slice(2)}`, scope: 'orders:read', roles: ['orders-reader'],
      ...claims,
    }).setProtectedHeader(header).sign(key.privateKey);
  }
}

export const API = 'https://orders.example.test';

/** An unsigned token (`alg: none`) with the given claims. */
export function unsigned(claims: JWTPayload, header: Record<string, unknown> = {}): string {
  const part = (v: object) => Buffer.from(JSON.stringify(v)).toString('base64url');
  return `${part({ alg: 'none', typ: 'at+jwt', ...header })}.${part(claims)}.`;
}
