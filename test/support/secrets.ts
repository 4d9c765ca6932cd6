import { createHash } from 'node:crypto';

/**
 * Every form in which a client secret travels or rests, for "never logged" assertions: a log
 * line holding the Authorization header or the request body leaks the secret without ever
 * containing it verbatim.
 * - raw, and percent-encoded (RFC 6749 §2.3.1 form-encodes id and secret before Basic);
 * - base64(id:secret), with and without that encoding (the Basic credentials, RFC 7617);
 * - the urlencoded form field of client_secret_post;
 * - `storedHashes`: the stored hashes of the client's secrets (an offline-guessing target);
 * - the SHA-256 of the secret (hex and base64url), the digest a careless log would "redact" to.
 */
export function secretForms(clientId: string, secret: string, storedHashes: string[] = []): Map<string, string> {
  const encoded = new URLSearchParams({ client_secret: secret }).toString();
  const digest = createHash('sha256').update(secret).digest();
  return new Map<string, string>([
    ['raw secret', secret],
    ['percent-encoded secret', encodeURIComponent(secret)],
    ['form-encoded client_secret field', encoded],
    ['Basic credentials base64(id:secret)', Buffer.from(`${clientId}:${secret}`).toString('base64')],
    ['Basic credentials base64(urlencode(id):urlencode(secret))', Buffer.from(`${encodeURIComponent(clientId)}:${encodeURIComponent(secret)}`).toString('base64')],
    ['SHA-256 of the secret (hex)', digest.toString('hex')],
    ['SHA-256 of the secret (base64url)', digest.toString('base64url')],
    ...storedHashes.map((hash, i): [string, string] => [`stored secret hash #${i + 1}`, hash]),
  ]);
}

/** The names of the forms of `forms` that occur in `text`. */
export function leakedForms(text: string, forms: Map<string, string>): string[] {
  return [...forms].filter(([, value]) => text.includes(value)).map(([name]) => name);
}
