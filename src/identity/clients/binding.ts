import { X509Certificate } from 'node:crypto';
import { isIP } from 'node:net';
import { z } from 'zod';

/**
 * Client metadata of clients bound to a key: mutual-TLS authentication and certificate-bound
 * tokens (RFC 8705 §2.1.2, §2.2, §3.4), DPoP-bound tokens (RFC 9449 §5.2).
 */
export const SUBJECT_PROPERTIES = [
  'tls_client_auth_subject_dn', 'tls_client_auth_san_dns', 'tls_client_auth_san_uri', 'tls_client_auth_san_ip', 'tls_client_auth_san_email',
] as const;
export type SubjectProperty = (typeof SUBJECT_PROPERTIES)[number];

export interface BoundClientMetadata {
  tls_client_auth_subject_dn?: string;
  tls_client_auth_san_dns?: string;
  tls_client_auth_san_uri?: string;
  tls_client_auth_san_ip?: string;
  tls_client_auth_san_email?: string;
  /** RFC 8705 §3.4: access tokens carry cnf["x5t#S256"] of the client certificate used at the token endpoint. */
  tls_client_certificate_bound_access_tokens?: boolean;
  /** RFC 9449 §5.2: every token request needs a DPoP proof; tokens carry cnf.jkt. */
  dpop_bound_access_tokens?: boolean;
}

/** As given: optional, or null when an update clears them. */
export type BoundMetadataInput = { [K in keyof BoundClientMetadata]?: BoundClientMetadata[K] | null | undefined };

/** The stored (and shown) shape. */
export const storedBoundMetadata = {
  tls_client_auth_subject_dn: z.string().optional().describe('RFC 8705 §2.1.2: expected subject DN (RFC 4514 string) of the client certificate.'),
  tls_client_auth_san_dns: z.string().optional().describe('RFC 8705 §2.1.2: expected dNSName SAN entry.'),
  tls_client_auth_san_uri: z.string().optional().describe('RFC 8705 §2.1.2: expected uniformResourceIdentifier SAN entry.'),
  tls_client_auth_san_ip: z.string().optional().describe('RFC 8705 §2.1.2: expected iPAddress SAN entry.'),
  tls_client_auth_san_email: z.string().optional().describe('RFC 8705 §2.1.2: expected rfc822Name SAN entry.'),
  tls_client_certificate_bound_access_tokens: z.boolean().optional()
    .describe('RFC 8705 §3.4: access tokens are bound to the client certificate (cnf x5t#S256).'),
  dpop_bound_access_tokens: z.boolean().optional().describe('RFC 9449 §5.2: a DPoP proof is required; tokens are bound to its key (cnf.jkt).'),
};

const DN_ATTRIBUTE = /^\s*([A-Za-z][A-Za-z0-9-]*|\d+(\.\d+)+)\s*=/;

/** What the admin API and the CLI accept (each field of the create and patch schemas). */
export const boundMetadataFields = {
  tls_client_auth_subject_dn: z.string().min(3).max(1024)
    .refine((dn) => dn.split(/(?<!\\),/).every((rdn) => DN_ATTRIBUTE.test(rdn)), 'must be an RFC 4514 distinguished name such as CN=orders,O=Example,C=DE'),
  tls_client_auth_san_dns: z.string().max(253).regex(/^(?!-)[A-Za-z0-9-]{1,63}(\.(?!-)[A-Za-z0-9-]{1,63})*\.?$/, 'must be a DNS name (no wildcard)'),
  tls_client_auth_san_uri: z.string().max(2000).refine((text) => URL.canParse(text), 'must be an absolute URI'),
  tls_client_auth_san_ip: z.string().max(45).refine((text) => isIP(text) > 0, 'must be an IPv4 or IPv6 address'),
  tls_client_auth_san_email: z.string().max(320).regex(/^[^\s@]+@[^\s@]+$/, 'must be an e-mail address'),
  tls_client_certificate_bound_access_tokens: z.boolean(),
  dpop_bound_access_tokens: z.boolean(),
};

/** Cleared (null) and false fields left out. */
export function boundMetadataOf(input: BoundMetadataInput): BoundClientMetadata {
  const out: BoundClientMetadata = {};
  for (const property of SUBJECT_PROPERTIES) {
    const value = input[property];
    if (value) out[property] = value;
  }
  if (input.tls_client_certificate_bound_access_tokens) out.tls_client_certificate_bound_access_tokens = true;
  if (input.dpop_bound_access_tokens) out.dpop_bound_access_tokens = true;
  return out;
}

/** Rules between fields for key-bound clients; `method` is the effective token_endpoint_auth_method. */
export function boundShapeIssues(client: BoundMetadataInput & { jwks?: { keys: object[] } | null | undefined; jwks_uri?: string | null | undefined }, method: string): { field: string; message: string }[] {
  const issues: { field: string; message: string }[] = [];
  const subjects = SUBJECT_PROPERTIES.filter((p) => client[p]);
  if (method === 'tls_client_auth' && subjects.length !== 1) {
    issues.push({ field: 'token_endpoint_auth_method', message: `tls_client_auth requires exactly one of ${SUBJECT_PROPERTIES.join(', ')} (RFC 8705 §2.1.2)` });
  }
  if (method !== 'tls_client_auth') {
    for (const property of subjects) issues.push({ field: property, message: 'only for token_endpoint_auth_method tls_client_auth' });
  }
  if (method === 'self_signed_tls_client_auth') {
    if (!client.jwks) {
      issues.push({ field: 'jwks', message: 'self_signed_tls_client_auth requires jwks holding the client certificate (x5c)' });
    } else {
      const problem = client.jwks.keys.map((key) => certificateKeyProblem(key as Record<string, unknown>)).find(Boolean);
      if (problem) issues.push({ field: 'jwks', message: problem });
    }
  }
  return issues;
}

/**
 * RFC 8705 §2.2: a self-signed client is recognised by its certificate. oidc-provider matches
 * the presented certificate's SHA-256 thumbprint against x5c[0] of the registered keys, so each
 * key needs x5c, and its first certificate must hold that very public key.
 */
function certificateKeyProblem(key: Record<string, unknown>): string | undefined {
  const x5c = key.x5c;
  if (!Array.isArray(x5c) || typeof x5c[0] !== 'string') return 'for self_signed_tls_client_auth each key needs x5c with the client certificate (base64 DER)';
  let certificate: X509Certificate;
  try {
    certificate = new X509Certificate(Buffer.from(x5c[0], 'base64'));
  } catch {
    return 'x5c[0] is not a base64 DER X.509 certificate';
  }
  const actual = certificate.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  const members = ['kty', 'crv', 'x', 'y', 'n', 'e'].filter((m) => actual[m] !== undefined || key[m] !== undefined);
  if (members.some((m) => actual[m] !== key[m])) return 'the key does not match the public key of its x5c certificate';
  return undefined;
}

/** A public JWK with x5c for a PEM certificate (self_signed_tls_client_auth registration). */
export function certificateJwks(pem: string): { keys: Record<string, unknown>[] } {
  const certificate = new X509Certificate(pem);
  const jwk = certificate.publicKey.export({ format: 'jwk' }) as Record<string, unknown>;
  return { keys: [{ ...jwk, x5c: [certificate.raw.toString('base64')] }] };
}
