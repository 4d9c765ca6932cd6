import { randomUUID } from 'node:crypto';
import { createServer, type Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import { exportJWK, generateKeyPair, SignJWT, type CryptoKey, type JWK, type JWTPayload } from 'jose';

interface SigningKey {
  kid: string;
  privateKey: CryptoKey;
  jwk: JWK;
}

async function signingKey(alg = 'RS256'): Promise<SigningKey> {
  const { privateKey, publicKey } = await generateKeyPair(alg, { extractable: true });
  const kid = randomUUID();
  return { kid, privateKey, jwk: { ...(await exportJWK(publicKey)), kid, alg, use: 'sig' } };
}

/**
 * An external OpenID issuer played by a small HTTP server on a loopback port: discovery at
 * `<issuer>/.well-known/openid-configuration`, keys at `<issuer>/jwks` with a Cache-Control
 * max-age, RS256 signing like Kubernetes and GitHub Actions. Several issuers share one server
 * under different paths (`/k8s`, `/gha`).
 */
export class TestIssuer {
  readonly #keys = new Map<string, SigningKey[]>();
  readonly requests: string[] = [];
  maxAge = 300;
  #server: Server | undefined;
  base = '';

  static async start(paths: string[]): Promise<TestIssuer> {
    const issuer = new TestIssuer();
    for (const path of paths) issuer.#keys.set(path, [await signingKey()]);
    issuer.#server = createServer((req, res) => {
      issuer.requests.push(req.url ?? '');
      const match = /^(\/[a-z0-9-]+)(\/\.well-known\/openid-configuration|\/jwks)$/.exec(req.url ?? '');
      const keys = match ? issuer.#keys.get(match[1]!) : undefined;
      if (!match || !keys) {
        res.statusCode = 404;
        return res.end();
      }
      res.setHeader('content-type', 'application/json');
      if (match[2] === '/jwks') {
        res.setHeader('cache-control', `public, max-age=${issuer.maxAge}`);
        return res.end(JSON.stringify({ keys: keys.map((k) => k.jwk) }));
      }
      res.end(JSON.stringify({ issuer: issuer.url(match[1]!), jwks_uri: `${issuer.url(match[1]!)}/jwks`, id_token_signing_alg_values_supported: ['RS256'] }));
    });
    await new Promise<void>((resolve) => issuer.#server!.listen(0, '127.0.0.1', resolve));
    issuer.base = `http://127.0.0.1:${(issuer.#server.address() as AddressInfo).port}`;
    return issuer;
  }

  url(path: string): string {
    return `${this.base}${path}`;
  }

  /** The issuer's published JWKS (what an attacker could read). */
  jwks(path: string): { keys: JWK[] } {
    return { keys: this.#keys.get(path)!.map((k) => k.jwk) };
  }

  /** Rotation: a new key signs from now on and is the only one published. */
  async rotate(path: string): Promise<void> {
    this.#keys.set(path, [await signingKey()]);
  }

  /** Signs `claims` with the issuer's current key (or a key it never published). */
  async sign(path: string, claims: JWTPayload, options: { unpublished?: boolean; header?: Record<string, unknown> } = {}): Promise<string> {
    const key = options.unpublished ? await signingKey() : this.#keys.get(path)![0]!;
    return new SignJWT(claims).setProtectedHeader({ alg: 'RS256', typ: 'JWT', kid: key.kid, ...options.header }).sign(key.privateKey);
  }

  close(): Promise<void> {
    return new Promise((resolve) => this.#server!.close(() => resolve()));
  }
}

const seconds = () => Math.floor(Date.now() / 1000);

/**
 * A Kubernetes projected service-account token (TokenRequest API, `serviceAccountToken`
 * volume with `audience`): iss, sub `system:serviceaccount:<ns>:<name>`, aud (an array),
 * exp, iat, nbf and the `kubernetes.io` claim; no jti.
 */
export function kubernetesClaims(iss: string, aud: string, options: { namespace?: string; serviceAccount?: string; iat?: number; exp?: number } = {}): JWTPayload {
  const namespace = options.namespace ?? 'payments';
  const name = options.serviceAccount ?? 'invoicer';
  const iat = options.iat ?? seconds();
  return {
    aud: [aud],
    exp: options.exp ?? iat + 3600,
    iat,
    nbf: iat,
    iss,
    'kubernetes.io': {
      namespace,
      node: { name: 'ip-10-0-12-34.eu-west-1.compute.internal', uid: randomUUID() },
      pod: { name: `${name}-7d9f8b6c5d-x2x7q`, uid: randomUUID() },
      serviceaccount: { name, uid: randomUUID() },
      warnafter: iat + 3000,
    },
    sub: `system:serviceaccount:${namespace}:${name}`,
  };
}

/** A GitHub Actions OIDC token (claims per GitHub's "About security hardening with OpenID Connect"). */
export function githubActionsClaims(iss: string, aud: string, options: { repository?: string; repositoryId?: string; ref?: string; jti?: string } = {}): JWTPayload {
  const repository = options.repository ?? 'acme/deployer';
  const [owner] = repository.split('/');
  const ref = options.ref ?? 'refs/heads/main';
  const iat = seconds();
  return {
    jti: options.jti ?? randomUUID(),
    sub: `repo:${repository}:ref:${ref}`,
    aud,
    ref,
    sha: 'd6e5b5a0c1f3e2b4a9d8c7b6a5f4e3d2c1b0a9f8',
    repository,
    repository_owner: owner,
    actor_id: '1042',
    repository_visibility: 'private',
    repository_id: options.repositoryId ?? '734501',
    repository_owner_id: '65001',
    run_id: '6230512345',
    run_number: '57',
    run_attempt: '1',
    runner_environment: 'github-hosted',
    actor: 'octocat',
    workflow: 'deploy',
    head_ref: '',
    base_ref: '',
    event_name: 'push',
    ref_type: 'branch',
    workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    job_workflow_ref: `${repository}/.github/workflows/deploy.yml@${ref}`,
    iss,
    nbf: iat - 5,
    exp: iat + 300,
    iat,
  };
}
