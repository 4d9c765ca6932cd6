import { DPOP_ALGS } from './algorithms.ts';

/**
 * Why a request was refused, with the RFC 6750 §3.1 error code a resource server answers and
 * the `WWW-Authenticate` challenge that carries it. Every adapter renders these the same way.
 */

/** RFC 6750 §3.1 error codes. */
export type BearerErrorCode = 'invalid_request' | 'invalid_token' | 'insufficient_scope';

/** The authentication scheme of the challenge: DPoP-bound tokens are challenged as DPoP (RFC 9449 §7.1). */
export type Scheme = 'Bearer' | 'DPoP';

export interface VerifyErrorOptions {
  scheme?: Scheme;
  /** Scopes that would have been enough (RFC 6750 §3 `scope` attribute), for insufficient_scope. */
  scope?: readonly string[];
  cause?: unknown;
}

export abstract class VerifyError extends Error {
  abstract readonly code: BearerErrorCode;
  abstract readonly status: 400 | 401 | 403;
  readonly scheme: Scheme;
  readonly scope: readonly string[] | undefined;

  constructor(message: string, options: VerifyErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.scheme = options.scheme ?? 'Bearer';
    this.scope = options.scope;
  }

  /** The `WWW-Authenticate` value for this refusal (RFC 6750 §3, RFC 9449 §7.1). */
  challenge(realm?: string): string {
    return challenge(this.scheme, {
      ...(realm ? { realm } : {}),
      error: this.code,
      error_description: this.message,
      ...(this.scope?.length ? { scope: this.scope.join(' ') } : {}),
    });
  }
}

/** RFC 6750 §3.1: malformed request (two tokens, an unsupported scheme, a DPoP proof missing). 400. */
export class InvalidRequest extends VerifyError {
  override name = 'InvalidRequest';
  readonly code = 'invalid_request';
  readonly status = 400;
}

/** RFC 6750 §3.1: expired, revoked, malformed, foreign or otherwise invalid token. 401. */
export class InvalidToken extends VerifyError {
  override name = 'InvalidToken';
  readonly code = 'invalid_token';
  readonly status = 401;
}

/** RFC 6750 §3.1: a valid token without the scope or role the resource needs. 403. */
export class InsufficientScope extends VerifyError {
  override name = 'InsufficientScope';
  readonly code = 'insufficient_scope';
  readonly status = 403;
}

/**
 * The request carried no credentials at all. RFC 6750 §3.1: the challenge then carries no
 * error code ("SHOULD NOT include an error code"). 401.
 */
export class MissingToken extends VerifyError {
  override name = 'MissingToken';
  readonly code = 'invalid_request';
  readonly status = 401;
  override challenge(realm?: string): string {
    return challenge(this.scheme, realm ? { realm } : {});
  }
}

/**
 * The key set could not be obtained and no usable cached copy exists: nothing can be verified,
 * which is the verifier's failure, not the caller's (adapters answer 503, not 401).
 */
export class KeySetUnavailable extends Error {
  override name = 'KeySetUnavailable';
  readonly status = 503;
}

/**
 * RFC 6750 §3: auth-param values are quoted strings of %x20-21 / %x23-5B / %x5D-7E; anything
 * else (quotes, backslashes, control characters, non-ASCII) is replaced so that a message
 * built from a token's content can never break or inject into the header.
 */
function quoted(value: string): string {
  return `"${value.replace(/[^\x20\x21\x23-\x5B\x5D-\x7E]/g, '?').slice(0, 200)}"`;
}

function challenge(scheme: Scheme, params: Record<string, string>): string {
  const list = Object.entries(params).map(([k, v]) => `${k}=${quoted(v)}`);
  // RFC 9449 §7.1: a DPoP challenge names the algorithms proofs may use.
  if (scheme === 'DPoP') list.push(`algs="${DPOP_ALGS.join(' ')}"`);
  return list.length ? `${scheme} ${list.join(', ')}` : scheme;
}
