import { createServer, type IncomingMessage, type Server, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import { performance } from 'node:perf_hooks';
import type { Logger } from 'pino';
import { authorize, refusal } from '../adapters/core.ts';
import { InvalidToken } from '../errors.ts';
import { requireRoles, requireScopes, rolesOf, scopesOf, type Guard } from '../guards.ts';
import { single } from '../request.ts';
import { createVerifier, type AccessTokenClaims, type Verifier, type VerifierOptions } from '../verifier.ts';
import { VerifyMetrics, type Outcome } from './metrics.ts';

/**
 * The forward-auth verifier (DESIGN.md "Verifying at the edge"): for gateways that ask an HTTP
 * service whether a request may pass (nginx auth_request, Traefik ForwardAuth, Envoy ext_authz
 * in HTTP mode, Kong forward-auth plugins). Every path but /healthz and /metrics is a question;
 * tokens are verified locally against the cached key set, never by calling Keyward.
 *
 * Request headers read (set by the gateway):
 * - Authorization (and DPoP): the client's credentials, passed through;
 * - X-Keyward-Require-Roles / X-Keyward-Require-Scopes: comma / space separated, all required (403 otherwise);
 * - X-Forwarded-Method, X-Forwarded-Proto, X-Forwarded-Host, X-Forwarded-Uri: the client's
 *   request, needed only for DPoP-bound tokens (Traefik sends these; the nginx recipe sets them);
 * - X-Keyward-Client-Cert: the client's TLS certificate, URL-encoded PEM (nginx
 *   `$ssl_client_escaped_cert`), needed only for certificate-bound tokens.
 * Answers: 200 with X-Keyward-Subject, -Client-Id, -Roles, -Scope; 401 with WWW-Authenticate;
 * 403 for a missing role or scope; 503 when no key set can be obtained.
 */
export interface ForwardAuthOptions extends VerifierOptions {
  logger?: Logger;
}

export interface ForwardAuth {
  server: Server;
  verifier: Verifier;
  metrics: VerifyMetrics;
  listen(port: number, host?: string): Promise<string>;
  close(): Promise<void>;
}

const printable = /^[\x20-\x7E]*$/;

export function createForwardAuth(options: ForwardAuthOptions): ForwardAuth {
  const metrics = new VerifyMetrics();
  const { logger } = options;
  const verifier = createVerifier({
    ...options,
    jwks: {
      ...options.jwks,
      onFetch: ({ reason, ok, error }) => {
        metrics.fetch(reason, ok);
        if (!ok) logger?.warn({ reason, err: error instanceof Error ? error.message : String(error) }, 'key set fetch failed');
        options.jwks?.onFetch?.({ reason, ok, error });
      },
    },
  });

  const server = createServer((req, res) => {
    if (req.url === '/healthz') return health(res);
    if (req.url === '/metrics') return void sendMetrics(res);
    void decide(req, res);
  });
  // Gateways keep connections to their auth service open; outlive their idle timeouts (nginx 60 s).
  server.keepAliveTimeout = 65_000;

  function health(res: ServerResponse): void {
    const status = verifier.jwks.status();
    res.statusCode = status.loaded ? 200 : 503;
    res.setHeader('content-type', 'application/json');
    res.setHeader('cache-control', 'no-store');
    res.end(JSON.stringify({ status: status.loaded ? 'ok' : 'no key set yet', keys: status.kids.length }));
  }

  async function sendMetrics(res: ServerResponse): Promise<void> {
    res.setHeader('content-type', metrics.registry.contentType);
    res.end(await metrics.registry.metrics());
  }

  async function decide(req: IncomingMessage, res: ServerResponse): Promise<void> {
    const started = performance.now();
    let outcome: Outcome;
    try {
      const claims = await authorize(verifier, facts(req), guardsOf(req));
      const headers = identityHeaders(claims);
      for (const [name, value] of Object.entries(headers)) res.setHeader(name, value);
      res.statusCode = 200;
      res.end();
      outcome = 'allowed';
    } catch (error) {
      const answer = refusal(error);
      if (!answer) {
        logger?.error({ err: error instanceof Error ? error.message : String(error) }, 'forward-auth failed');
        res.statusCode = 500;
        res.end();
        metrics.decision('unavailable', (performance.now() - started) / 1000);
        return;
      }
      // Gateways pass 401 and 403 on and turn anything else into a 500: invalid_request is a 401 here.
      res.statusCode = answer.status === 400 ? 401 : answer.status;
      for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
      res.end(answer.body);
      outcome = answer.status === 403 ? 'forbidden' : answer.status === 503 ? 'unavailable' : 'unauthorized';
    }
    metrics.decision(outcome, (performance.now() - started) / 1000);
  }

  return {
    server,
    verifier,
    metrics,
    async listen(port, host = '127.0.0.1') {
      await new Promise<void>((resolve, reject) => {
        server.once('error', reject);
        server.listen(port, host, () => {
          server.off('error', reject);
          resolve();
        });
      });
      const address = server.address() as AddressInfo;
      return `http://${address.address.includes(':') ? `[${address.address}]` : address.address}:${address.port}`;
    },
    async close() {
      server.closeIdleConnections();
      await new Promise<void>((resolve) => server.close(() => resolve()));
    },
  };
}

function facts(req: IncomingMessage) {
  const header = (name: string) => single(req.headers[name], name);
  return {
    authorization: header('authorization'),
    dpop: header('dpop'),
    method: header('x-forwarded-method') ?? header('x-original-method') ?? req.method ?? 'GET',
    url: () => {
      const proto = header('x-forwarded-proto');
      const host = header('x-forwarded-host');
      const uri = header('x-forwarded-uri');
      if (!proto || !host || !uri) throw new InvalidToken('DPoP needs X-Forwarded-Proto, X-Forwarded-Host and X-Forwarded-Uri from the gateway', { scheme: 'DPoP' });
      return `${proto}://${host}${uri}`;
    },
    certificate: () => {
      const pem = header('x-keyward-client-cert');
      return pem ? decodeURIComponent(pem) : undefined;
    },
  };
}

function guardsOf(req: IncomingMessage): Guard[] {
  const list = (name: string, separator: RegExp) => (single(req.headers[name], name) ?? '').split(separator).map((s) => s.trim()).filter(Boolean);
  const roles = list('x-keyward-require-roles', /,/);
  const scopes = list('x-keyward-require-scopes', /[ ,]/);
  return [...(roles.length ? [requireRoles(...roles)] : []), ...(scopes.length ? [requireScopes(...scopes)] : [])];
}

/** The identity the gateway forwards upstream; refused rather than mangled when a claim cannot travel in a header. */
function identityHeaders(claims: AccessTokenClaims): Record<string, string> {
  const headers = {
    'x-keyward-subject': claims.sub,
    'x-keyward-client-id': claims.client_id,
    'x-keyward-roles': rolesOf(claims).join(','),
    'x-keyward-scope': scopesOf(claims).join(' '),
  };
  if (rolesOf(claims).some((r) => r.includes(',')) || !Object.values(headers).every((v) => printable.test(v))) {
    throw new InvalidToken('the token\'s identity cannot be forwarded in headers');
  }
  return headers;
}
