import type { DpopInput } from './binding.ts';
import { InvalidRequest, MissingToken } from './errors.ts';

/** The credentials of one HTTP request, read the same way by every adapter. */
export interface Credentials {
  token: string;
  /** Present when the request used the DPoP scheme. */
  dpop?: DpopInput;
}

/**
 * RFC 6750 §2.1 (and RFC 9449 §7.1 for the DPoP scheme): the token from the Authorization
 * header. The query-string and body methods (§2.2, §2.3) are not accepted: tokens in URLs end
 * up in logs. `url` is the request's absolute URL, needed only for DPoP.
 */
export function credentials(authorization: string | undefined, dpopHeader: string | undefined, method: string, url: () => string): Credentials {
  if (!authorization) throw new MissingToken('no access token');
  const match = /^(Bearer|DPoP) +([A-Za-z0-9\-._~+/]+=*)$/i.exec(authorization.trim());
  if (!match) throw new InvalidRequest('the Authorization header must be "Bearer <token>" or "DPoP <token>"');
  const token = match[2]!;
  if (match[1]!.toLowerCase() === 'dpop') {
    if (!dpopHeader) throw new InvalidRequest('the DPoP scheme requires a DPoP proof header', { scheme: 'DPoP' });
    return { token, dpop: { proof: dpopHeader, method, url: url() } };
  }
  return { token };
}

/** A header that may have arrived as a list (Node's IncomingHttpHeaders); more than one value is refused. */
export function single(value: string | string[] | undefined, name: string): string | undefined {
  if (Array.isArray(value)) {
    if (value.length > 1) throw new InvalidRequest(`more than one ${name} header`);
    return value[0];
  }
  return value;
}
