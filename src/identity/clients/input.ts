import { z } from 'zod';
import { PRIVATE_JWK_MEMBERS } from '../../keys/jwk.ts';
import { CLIENT_ID } from '../ids.ts';
import { LIMITS, displayName, resourceIdentifier, roleList, safeUrl, scopeString, unique } from '../input.ts';
import { AUTH_METHODS, GRANT_TYPES, clientShapeIssues } from './metadata.ts';

/** JWK members are strings (x5c an array of them); anything else is not a public key we can use. */
const jwkMember = z.union([z.string().max(8192), z.array(z.string().max(8192)).max(10)]);
const jwk = z.object({ kty: z.enum(['RSA', 'EC', 'OKP']), kid: z.string().max(200).optional() }).catchall(jwkMember)
  .superRefine((key, ctx) => {
    const leaked = PRIVATE_JWK_MEMBERS.filter((m) => m in key);
    if (leaked.length) ctx.addIssue({ code: 'custom', message: `public keys only; remove ${leaked.join(', ')}`, input: key });
  });

export const jwks = z.strictObject({ keys: z.array(jwk).min(1).max(10) });

const clientFields = {
  client_name: displayName,
  grant_types: z.array(z.enum(GRANT_TYPES)).min(1).max(GRANT_TYPES.length).refine(unique, 'must not repeat a grant type'),
  redirect_uris: z.array(safeUrl).max(LIMITS.uris).refine(unique, 'must not repeat a URI'),
  post_logout_redirect_uris: z.array(safeUrl).max(LIMITS.uris).refine(unique, 'must not repeat a URI'),
  token_endpoint_auth_method: z.enum(AUTH_METHODS),
  jwks,
  jwks_uri: safeUrl,
  scope: scopeString,
  default_resource: resourceIdentifier,
  allowed_resources: z.array(resourceIdentifier).max(LIMITS.uris).refine(unique, 'must not repeat a resource'),
  admin_console: z.boolean(),
  roles: roleList.refine(unique, 'must not repeat a role'),
  first_party: z.boolean(),
  resource_server: resourceIdentifier,
  disabled: z.boolean(),
};

/** A new client; the rules between fields are ClientService's own, applied here to name every failing field at once. */
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
  allowed_resources: clientFields.allowed_resources.optional(),
  admin_console: clientFields.admin_console.optional(),
  roles: clientFields.roles.optional(),
  first_party: clientFields.first_party.optional(),
  resource_server: clientFields.resource_server.optional(),
  disabled: clientFields.disabled.optional(),
}).superRefine((client, ctx) => {
  for (const issue of clientShapeIssues(client)) ctx.addIssue({ code: 'custom', path: [issue.field], message: issue.message, input: client });
});

/** Every field optional; `null` clears the optional ones. The merged result is checked by ClientService.update. */
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
  allowed_resources: clientFields.allowed_resources.nullable().optional(),
  admin_console: clientFields.admin_console.optional(),
  roles: clientFields.roles.optional(),
  first_party: clientFields.first_party.optional(),
  resource_server: clientFields.resource_server.nullable().optional(),
  disabled: clientFields.disabled.optional(),
});

/** Secret rotation; the previous secrets stay valid this long (0 = revoke at once, at most 30 days). */
export const secretRotation = z.strictObject({
  previous_secret_expires_in: z.number().int().min(0).max(30 * 86_400).default(3600),
});

/** A client_id as a path parameter or argument; any other string cannot name a client (the admin API answers 404). */
export const clientId = z.string().regex(CLIENT_ID);
