import { z } from 'zod';
import { LIMITS, displayName, resourceIdentifier, roleList, safeUrl, scopeString } from './common.ts';

const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials'] as const;
const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'none'] as const;
/** JWK members that carry private or symmetric key material (RFC 7518 §6). */
const PRIVATE_JWK_MEMBERS = ['d', 'p', 'q', 'dp', 'dq', 'qi', 'oth', 'k'];

/** JWK members are strings (x5c an array of them); anything else is not a public key we can use. */
const jwkMember = z.union([z.string().max(8192), z.array(z.string().max(8192)).max(10)]);
const jwk = z.object({ kty: z.enum(['RSA', 'EC', 'OKP']), kid: z.string().max(200).optional() }).catchall(jwkMember)
  .superRefine((key, ctx) => {
    const leaked = PRIVATE_JWK_MEMBERS.filter((m) => m in key);
    if (leaked.length) ctx.addIssue({ code: 'custom', message: `public keys only; remove ${leaked.join(', ')}`, input: key });
  });

export const jwks = z.strictObject({ keys: z.array(jwk).min(1).max(10) });

const unique = <T>(list: T[]) => new Set(list).size === list.length;

const clientFields = {
  client_name: displayName,
  grant_types: z.array(z.enum(GRANT_TYPES)).min(1).max(3).refine(unique, 'must not repeat a grant type'),
  redirect_uris: z.array(safeUrl).max(LIMITS.uris).refine(unique, 'must not repeat a URI'),
  post_logout_redirect_uris: z.array(safeUrl).max(LIMITS.uris).refine(unique, 'must not repeat a URI'),
  token_endpoint_auth_method: z.enum(AUTH_METHODS),
  jwks,
  jwks_uri: safeUrl,
  scope: scopeString,
  default_resource: resourceIdentifier,
  roles: roleList.refine(unique, 'must not repeat a role'),
  first_party: z.boolean(),
  resource_server: resourceIdentifier,
  disabled: z.boolean(),
};

export interface ClientShape {
  grant_types: string[];
  redirect_uris?: string[] | undefined;
  token_endpoint_auth_method?: string | undefined;
  jwks?: unknown;
  jwks_uri?: unknown;
}

/**
 * Rules between fields (RFC 7591 §2, RFC 9700): checked on creation and on the merged result
 * of an update, so PATCH cannot produce a client that POST would refuse.
 */
export function clientShapeIssues(client: ClientShape): { field: string; message: string }[] {
  const issues: { field: string; message: string }[] = [];
  const grants = client.grant_types;
  const method = client.token_endpoint_auth_method ?? (grants.includes('client_credentials') ? 'client_secret_basic' : 'none');
  if (grants.includes('authorization_code') && !client.redirect_uris?.length) {
    issues.push({ field: 'redirect_uris', message: 'authorization_code requires at least one redirect URI' });
  }
  if (grants.includes('refresh_token') && !grants.includes('authorization_code')) {
    issues.push({ field: 'grant_types', message: 'refresh_token requires authorization_code' });
  }
  if (method === 'none' && grants.includes('client_credentials')) {
    issues.push({ field: 'token_endpoint_auth_method', message: 'client_credentials requires an authenticating client (not none)' });
  }
  if (method === 'private_key_jwt' && !client.jwks && !client.jwks_uri) {
    issues.push({ field: 'jwks', message: 'private_key_jwt requires jwks or jwks_uri' });
  }
  if (client.jwks && client.jwks_uri) issues.push({ field: 'jwks_uri', message: 'give jwks or jwks_uri, not both' });
  return issues;
}

export const clientCreate = z.strictObject({
  client_name: clientFields.client_name,
  grant_types: clientFields.grant_types,
  redirect_uris: clientFields.redirect_uris.optional(),
  post_logout_redirect_uris: clientFields.post_logout_redirect_uris.optional(),
  token_endpoint_auth_method: clientFields.token_endpoint_auth_method.optional(),
  jwks: clientFields.jwks.optional(),
  jwks_uri: clientFields.jwks_uri.optional(),
  scope: clientFields.scope.optional(),
  default_resource: clientFields.default_resource.optional(),
  roles: clientFields.roles.optional(),
  first_party: clientFields.first_party.optional(),
  resource_server: clientFields.resource_server.optional(),
  disabled: clientFields.disabled.optional(),
}).superRefine((client, ctx) => {
  for (const issue of clientShapeIssues(client)) ctx.addIssue({ code: 'custom', path: [issue.field], message: issue.message, input: client });
});

/** Every field optional; `null` clears the optional ones. */
export const clientPatch = z.strictObject({
  client_name: clientFields.client_name.optional(),
  grant_types: clientFields.grant_types.optional(),
  redirect_uris: clientFields.redirect_uris.optional(),
  post_logout_redirect_uris: clientFields.post_logout_redirect_uris.optional(),
  token_endpoint_auth_method: clientFields.token_endpoint_auth_method.optional(),
  jwks: clientFields.jwks.nullable().optional(),
  jwks_uri: clientFields.jwks_uri.nullable().optional(),
  scope: clientFields.scope.nullable().optional(),
  default_resource: clientFields.default_resource.nullable().optional(),
  roles: clientFields.roles.optional(),
  first_party: clientFields.first_party.optional(),
  resource_server: clientFields.resource_server.nullable().optional(),
  disabled: clientFields.disabled.optional(),
});

/** Secret rotation; the previous secrets stay valid this long (0 = revoke at once, at most 30 days). */
export const secretRotation = z.strictObject({
  previous_secret_expires_in: z.number().int().min(0).max(30 * 86_400).default(3600),
});

/** Path parameter; anything else cannot name a client, so it is a 404 rather than a 400. */
export const clientId = z.string().regex(/^[A-Za-z0-9._~-]{1,128}$/);

export const clientView = z.object({
  client_id: z.string(),
  client_name: z.string(),
  grant_types: z.array(z.enum(GRANT_TYPES)),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
  token_endpoint_auth_method: z.enum(AUTH_METHODS),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  jwks_uri: z.string().optional(),
  scope: z.string().optional(),
  default_resource: z.string().optional(),
  roles: z.array(z.string()),
  first_party: z.boolean(),
  resource_server: z.string().nullable(),
  disabled: z.boolean(),
  secrets: z.array(z.object({ id: z.string(), created_at: z.string(), expires_at: z.string().nullable() })),
  created_at: z.string(),
  updated_at: z.string(),
});

export const clientCreated = clientView.extend({
  client_secret: z.string().optional().describe('Only in this response, only for confidential clients; store it now.'),
});

export const secretRotated = z.object({ client_secret: z.string(), previous_secret_expires_at: z.string() });
