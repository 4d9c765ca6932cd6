import { base64url, calculateJwkThumbprint, decodeProtectedHeader, EmbeddedJWK, jwtVerify, type JWK } from 'jose';
import { DPOP_ALGS } from './algorithms.ts';
import { InvalidRequest, InvalidToken } from './errors.ts';

/**
 * Sender-constrained tokens: the `cnf` claim binds a token to a key the caller must prove it
 * holds, either a DPoP key (RFC 9449, `cnf.jkt`) or a TLS client certificate (RFC 8705,
 * `cnf["x5t#S256"]`). A bound token without its proof is worthless to a thief.
 */

/** The DPoP proof of one request, and the request it must be about (RFC 9449 §4.3 checks 8 and 9). */
export interface DpopInput {
  /** The `DPoP` request header. */
  proof: string;
  /** The request's method. */
  method: string;
  /** The request's absolute URL (query and fragment are ignored, RFC 9449 §4.3 check 9). */
  url: string;
}

/** The client certificate of the TLS connection: DER bytes, or PEM text. */
export type CertificateInput = Uint8Array | string;

export interface Confirmation {
  jkt?: unknown;
  'x5t#S256'?: unknown;
}

export interface BindingOptions {
  /** How far a proof's `iat` may lie from now (default 300 s; RFC 9449 §11.1 leaves the window to the server). */
  dpopMaxAgeSeconds: number;
  clockToleranceSeconds: number;
  now: () => Date;
  /** A replay check for proof `jti`s (RFC 9449 §11.1): answer false when the jti was seen before. Stateless when absent. */
  dpopJtiUnused?: ((jti: string, expiresAt: Date) => boolean | Promise<boolean>) | undefined;
}

export async function checkBinding(token: string, cnf: Confirmation | undefined, input: { dpop?: DpopInput | undefined; certificate?: CertificateInput | undefined }, options: BindingOptions): Promise<void> {
  const jkt = cnf?.jkt;
  const x5t = cnf?.['x5t#S256'];
  if (jkt !== undefined) {
    if (typeof jkt !== 'string') throw new InvalidToken('malformed cnf.jkt', { scheme: 'DPoP' });
    if (!input.dpop) throw new InvalidToken('the token is DPoP-bound: present it with the DPoP scheme and a DPoP proof', { scheme: 'DPoP' });
    await checkDpop(token, jkt, input.dpop, options);
  } else if (input.dpop) {
    // RFC 9449 §7.2: a DPoP proof with a token that is not DPoP-bound is an error, not a downgrade.
    throw new InvalidToken('the token is not DPoP-bound', { scheme: 'DPoP' });
  }
  if (x5t !== undefined) {
    if (typeof x5t !== 'string') throw new InvalidToken('malformed cnf x5t#S256');
    if (input.certificate === undefined) throw new InvalidToken('the token is bound to a client certificate and none was presented');
    // RFC 8705 §3.1: base64url(SHA-256(DER of the certificate)).
    if (await certificateThumbprint(input.certificate) !== x5t) throw new InvalidToken('the client certificate does not match the token\'s binding');
  }
}

/** RFC 9449 §4.3, the checks a resource server makes on a proof (§7.1 adds `ath`). */
async function checkDpop(token: string, jkt: string, dpop: DpopInput, options: BindingOptions): Promise<void> {
  const invalid = (why: string, cause?: unknown) => new InvalidToken(`invalid DPoP proof: ${why}`, { scheme: 'DPoP', cause });
  if (!dpop.proof || dpop.proof.includes(',')) throw new InvalidRequest('exactly one DPoP proof is required', { scheme: 'DPoP' });
  let header;
  try {
    header = decodeProtectedHeader(dpop.proof);
  } catch (error) {
    throw invalid('not a JWT', error);
  }
  // Check 5: the header's jwk is a public key (jose's import refuses a private one: d, p, q, k).
  const jwk = header.jwk as JWK | undefined;
  if (!jwk || typeof jwk !== 'object' || 'd' in jwk || 'k' in jwk) throw invalid('the header must carry the public jwk');
  let payload;
  try {
    // Checks 2-7: a JWT, typ dpop+jwt, an asymmetric alg, signed by the key in its own header.
    ({ payload } = await jwtVerify(dpop.proof, EmbeddedJWK, {
      typ: 'dpop+jwt',
      algorithms: [...DPOP_ALGS],
      requiredClaims: ['jti', 'htm', 'htu', 'iat', 'ath'],
      currentDate: options.now(),
    }));
  } catch (error) {
    throw invalid(error instanceof Error ? error.message : 'unverifiable', error);
  }
  if (payload.htm !== dpop.method.toUpperCase()) throw invalid('htm does not match the request method');
  if (typeof payload.htu !== 'string' || normalizedUrl(payload.htu) !== normalizedUrl(dpop.url)) throw invalid('htu does not match the request URL');
  // Check 11: iat within the window (the proof's freshness, since no nonce is issued here).
  const now = options.now().getTime() / 1000;
  const window = options.dpopMaxAgeSeconds + options.clockToleranceSeconds;
  if (typeof payload.iat !== 'number' || Math.abs(now - payload.iat) > window) throw invalid('iat is outside the acceptable window');
  // §7.1: the proof is about this very token.
  if (payload.ath !== await sha256(new TextEncoder().encode(token))) throw invalid('ath does not match the access token');
  // Check 12: the token is bound to the key that signed the proof (RFC 7638 thumbprint).
  if (await calculateJwkThumbprint(jwk, 'sha256') !== jkt) throw invalid('the proof key is not the key the token is bound to');
  if (options.dpopJtiUnused && typeof payload.jti === 'string') {
    const unused = await options.dpopJtiUnused(payload.jti, new Date((payload.iat + window) * 1000));
    if (!unused) throw invalid('the proof was replayed');
  }
}

/** Scheme and host compared case-insensitively, default port dropped, query and fragment ignored (RFC 9449 §4.3). */
function normalizedUrl(text: string): string | undefined {
  try {
    const url = new URL(text);
    return `${url.protocol}//${url.host}${url.pathname}`;
  } catch {
    return undefined;
  }
}

export async function certificateThumbprint(certificate: CertificateInput): Promise<string> {
  return sha256(typeof certificate === 'string' ? pemToDer(certificate) : certificate);
}

function pemToDer(pem: string): Uint8Array {
  const base64 = pem.replace(/-----(BEGIN|END) CERTIFICATE-----/g, '').replace(/\s+/g, '');
  const binary = atob(base64);
  return Uint8Array.from(binary, (c) => c.charCodeAt(0));
}

async function sha256(data: Uint8Array): Promise<string> {
  return base64url.encode(new Uint8Array(await crypto.subtle.digest('SHA-256', Uint8Array.from(data))));
}
