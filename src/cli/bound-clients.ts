import { readFile } from 'node:fs/promises';
import type { ParseArgsConfig } from 'node:util';
import { certificateJwks } from '../identity/clients/index.ts';

type Values = Record<string, string | boolean | (string | boolean)[] | undefined>;

/** `clients create` options for clients bound to a key (RFC 8705, RFC 9449). */
export const boundClientOptions: NonNullable<ParseArgsConfig['options']> = {
  'tls-subject-dn': { type: 'string' }, 'tls-san-dns': { type: 'string' }, 'tls-san-uri': { type: 'string' },
  'tls-san-ip': { type: 'string' }, 'tls-san-email': { type: 'string' },
  'certificate-bound-tokens': { type: 'boolean' }, 'dpop-bound-tokens': { type: 'boolean' },
  'self-signed-certificate': { type: 'string' },
};

/**
 * The metadata those options give; `--self-signed-certificate <pem file>` registers the
 * certificate as jwks (with x5c) and selects self_signed_tls_client_auth. The result is
 * validated with the admin API's schema by the caller.
 */
export async function boundClientValues(values: Values): Promise<Record<string, unknown>> {
  const text = (name: string) => (typeof values[name] === 'string' ? values[name] : undefined);
  const out: Record<string, unknown> = {
    tls_client_auth_subject_dn: text('tls-subject-dn'),
    tls_client_auth_san_dns: text('tls-san-dns'),
    tls_client_auth_san_uri: text('tls-san-uri'),
    tls_client_auth_san_ip: text('tls-san-ip'),
    tls_client_auth_san_email: text('tls-san-email'),
    tls_client_certificate_bound_access_tokens: values['certificate-bound-tokens'] === true ? true : undefined,
    dpop_bound_access_tokens: values['dpop-bound-tokens'] === true ? true : undefined,
  };
  if (Object.keys(out).some((k) => k.startsWith('tls_client_auth_') && out[k] !== undefined)) out.token_endpoint_auth_method = 'tls_client_auth';
  const file = text('self-signed-certificate');
  if (file) {
    try {
      out.jwks = certificateJwks(await readFile(file, 'utf8'));
    } catch {
      throw new Error(`--self-signed-certificate: ${file} is not a readable PEM certificate`);
    }
    out.token_endpoint_auth_method = 'self_signed_tls_client_auth';
  }
  return Object.fromEntries(Object.entries(out).filter(([, v]) => v !== undefined));
}
