import type { CertificateInput } from '../binding.ts';
import { KeySetUnavailable, VerifyError } from '../errors.ts';
import type { Guard } from '../guards.ts';
import { credentials } from '../request.ts';
import type { AccessTokenClaims, Verifier } from '../verifier.ts';

/** Options every adapter takes. */
export interface AdapterOptions<Req> {
  /** Checks after verification, e.g. `[requireScopes('orders:read')]`; a failed one answers 403. */
  require?: readonly Guard[];
  /** `realm` of the challenge (RFC 6750 §3). */
  realm?: string;
  /**
   * The client certificate for certificate-bound tokens (RFC 8705), when TLS ends before this
   * process (e.g. a header the proxy sets). Default: the TLS connection's own peer certificate.
   */
  certificate?: (req: Req) => CertificateInput | undefined;
}

/** What an adapter reads from its framework's request. */
export interface RequestFacts {
  authorization: string | undefined;
  dpop: string | undefined;
  method: string;
  /** The absolute URL as the client addressed it (for DPoP `htu`). */
  url: () => string;
  certificate: () => CertificateInput | undefined;
}

export async function authorize(verifier: Verifier, facts: RequestFacts, guards: readonly Guard[] = []): Promise<AccessTokenClaims> {
  const { token, dpop } = credentials(facts.authorization, facts.dpop, facts.method, facts.url);
  const claims = await verifier.verify(token, { dpop, certificate: facts.certificate() });
  for (const guard of guards) guard(claims);
  return claims;
}

export interface Refusal {
  status: number;
  headers: Record<string, string>;
  body: string;
}

/** The response for a refusal; undefined for anything else (a bug, to be rethrown). */
export function refusal(error: unknown, realm?: string): Refusal | undefined {
  const json = { 'content-type': 'application/json', 'cache-control': 'no-store' };
  if (error instanceof VerifyError) {
    return {
      status: error.status,
      headers: { ...json, 'www-authenticate': error.challenge(realm) },
      body: JSON.stringify({ error: error.code, error_description: error.message }),
    };
  }
  if (error instanceof KeySetUnavailable) {
    return { status: 503, headers: { ...json, 'retry-after': '5' }, body: JSON.stringify({ error: 'temporarily_unavailable', error_description: 'token verification is unavailable' }) };
  }
  return undefined;
}

/** A Node socket's TLS peer certificate in DER, structurally (no dependency on node:tls). */
export function peerCertificate(socket: unknown): Uint8Array | undefined {
  const tls = socket as { getPeerCertificate?: () => { raw?: Uint8Array } | null } | undefined;
  const raw = typeof tls?.getPeerCertificate === 'function' ? tls.getPeerCertificate()?.raw : undefined;
  return raw && raw.length ? raw : undefined;
}
