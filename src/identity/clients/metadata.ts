import { z } from 'zod';
import { boundMetadataOf, boundShapeIssues, storedBoundMetadata, type BoundClientMetadata, type BoundMetadataInput } from './binding.ts';

/** RFC 8628 §3.4: the device authorization grant's grant_type. */
export const DEVICE_CODE_GRANT = 'urn:ietf:params:oauth:grant-type:device_code';

/** RFC 8693 token exchange (src/oidc/grants/token-exchange.ts). */
export const TOKEN_EXCHANGE = 'urn:ietf:params:oauth:grant-type:token-exchange';

/** The grant types a client may be registered for (RFC 7591 §2, RFC 8628 §7.2, RFC 8693). */
export const GRANT_TYPES = ['authorization_code', 'refresh_token', 'client_credentials', DEVICE_CODE_GRANT, TOKEN_EXCHANGE] as const;
export type GrantType = (typeof GRANT_TYPES)[number];

/**
 * Token endpoint authentication methods (RFC 7591 §2); client_secret_jwt is off (see oidc/policy.ts).
 * `federated_jwt` is Keyward's own: an external issuer's token per the client's federated
 * credentials (identity/federation/, oidc/overrides/federated-jwt.ts).
 */
export const AUTH_METHODS = ['client_secret_basic', 'client_secret_post', 'private_key_jwt', 'tls_client_auth', 'self_signed_tls_client_auth', 'none', 'federated_jwt'] as const;
export type AuthMethod = (typeof AUTH_METHODS)[number];

/** RFC 7591 client metadata as stored (never includes a secret). */
export interface ClientMetadata extends BoundClientMetadata {
  grant_types: GrantType[];
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  token_endpoint_auth_method: AuthMethod;
  jwks?: { keys: object[] };
  jwks_uri?: string;
  /** Space-separated scopes this client may request. */
  scope?: string;
  /** The resource used when a token request names none. */
  default_resource?: string;
  /**
   * RFC 8707 §2, RFC 9700 §2.3: the resource identifiers this client may obtain tokens for.
   * Unset: every registered resource except the admin API (reserved to `admin_console`).
   */
  allowed_resources?: string[];
  /** An admin designated this first-party client to obtain tokens for the admin API. */
  admin_console?: boolean;
  /** RFC 8693: the resource identifiers this client may exchange a subject token for. */
  token_exchange_audiences?: string[];
}

/** The `metadata` JSON column read back; a row that does not match is a bug, not input. */
export const storedMetadata = z.object({
  grant_types: z.array(z.enum(GRANT_TYPES)),
  redirect_uris: z.array(z.string()),
  post_logout_redirect_uris: z.array(z.string()),
  token_endpoint_auth_method: z.enum(AUTH_METHODS),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  jwks_uri: z.string().optional(),
  scope: z.string().optional(),
  default_resource: z.string().optional(),
  allowed_resources: z.array(z.string()).optional()
    .describe('Resources this client may obtain tokens for (RFC 8707); unset: every registered resource except the admin API.'),
  admin_console: z.boolean().optional().describe('First-party client designated to obtain tokens for the admin API.'),
  ...storedBoundMetadata,
  token_exchange_audiences: z.array(z.string()).optional()
    .describe('RFC 8693 token exchange: the resource identifiers this client may exchange a subject token for; unset: none.'),
});

export function parseStoredMetadata(json: unknown): ClientMetadata {
  // The parsed shape is assignable to ClientMetadata; the annotation keeps the two in step.
  const metadata: ClientMetadata = storedMetadata.parse(json);
  return metadata;
}

/**
 * RFC 8707 §2: whether `client` may obtain a token for the resource `identifier`. The admin
 * API's audience is reserved to admin consoles whatever else the client lists.
 */
export function mayObtain(client: { metadata: ClientMetadata }, identifier: string, adminAudience: string): boolean {
  if (identifier === adminAudience) return client.metadata.admin_console === true;
  const allowed = client.metadata.allowed_resources;
  return !allowed || allowed.includes(identifier);
}

export function isConfidential(method: AuthMethod): boolean {
  return method === 'client_secret_basic' || method === 'client_secret_post';
}

/** Client metadata as given: optional fields may be missing, or null when an update clears them. */
export interface MetadataInput extends BoundMetadataInput {
  grant_types: GrantType[];
  redirect_uris?: string[] | undefined;
  post_logout_redirect_uris?: string[] | undefined;
  token_endpoint_auth_method?: AuthMethod | undefined;
  jwks?: { keys: object[] } | null | undefined;
  jwks_uri?: string | null | undefined;
  scope?: string | null | undefined;
  default_resource?: string | null | undefined;
  allowed_resources?: string[] | null | undefined;
  admin_console?: boolean | undefined;
  token_exchange_audiences?: string[] | null | undefined;
  /** Not metadata (a column of its own), but `admin_console` depends on it. */
  first_party?: boolean | undefined;
}

/** A client_credentials or token-exchange client authenticates with a secret unless told otherwise; any other is public. */
function defaultAuthMethod(grants: readonly GrantType[]): AuthMethod {
  return grants.includes('client_credentials') || grants.includes(TOKEN_EXCHANGE) ? 'client_secret_basic' : 'none';
}

/** The metadata to store: defaults filled in, cleared (null or empty) optional fields left out. */
export function metadataOf(input: MetadataInput): ClientMetadata {
  return {
    grant_types: input.grant_types,
    redirect_uris: input.redirect_uris ?? [],
    post_logout_redirect_uris: input.post_logout_redirect_uris ?? [],
    token_endpoint_auth_method: input.token_endpoint_auth_method ?? defaultAuthMethod(input.grant_types),
    ...(input.jwks ? { jwks: input.jwks } : {}),
    ...(input.jwks_uri ? { jwks_uri: input.jwks_uri } : {}),
    ...(input.scope ? { scope: input.scope } : {}),
    ...(input.default_resource ? { default_resource: input.default_resource } : {}),
    ...(input.allowed_resources ? { allowed_resources: input.allowed_resources } : {}),
    ...(input.admin_console ? { admin_console: true } : {}),
    ...boundMetadataOf(input),
    ...(input.token_exchange_audiences?.length ? { token_exchange_audiences: input.token_exchange_audiences } : {}),
  };
}

export interface ClientIssue {
  field: string;
  message: string;
}

/**
 * Rules between fields (RFC 7591 §2, RFC 9700): checked on creation and on the merged result
 * of an update, so an update cannot produce a client that creation would refuse.
 */
export function clientShapeIssues(client: MetadataInput): ClientIssue[] {
  const issues: ClientIssue[] = [];
  const grants = client.grant_types;
  const method = client.token_endpoint_auth_method ?? defaultAuthMethod(grants);
  if (grants.includes('authorization_code') && !client.redirect_uris?.length) {
    issues.push({ field: 'redirect_uris', message: 'authorization_code requires at least one redirect URI' });
  }
  if (grants.includes('refresh_token') && !grants.includes('authorization_code') && !grants.includes(DEVICE_CODE_GRANT)) {
    issues.push({ field: 'grant_types', message: `refresh_token requires authorization_code or ${DEVICE_CODE_GRANT}` });
  }
  if (method === 'none' && grants.includes('client_credentials')) {
    issues.push({ field: 'token_endpoint_auth_method', message: 'client_credentials requires an authenticating client (not none)' });
  }
  if (method === 'none' && grants.includes(TOKEN_EXCHANGE)) {
    issues.push({ field: 'token_endpoint_auth_method', message: 'token exchange requires an authenticating client (not none)' });
  }
  if (method === 'private_key_jwt' && !client.jwks && !client.jwks_uri) {
    issues.push({ field: 'jwks', message: 'private_key_jwt requires jwks or jwks_uri' });
  }
  if (method === 'federated_jwt' && (client.jwks || client.jwks_uri)) {
    issues.push({ field: 'jwks', message: 'federated_jwt takes its keys from the client\'s federated credentials; remove jwks and jwks_uri' });
  }
  if (client.jwks && client.jwks_uri) issues.push({ field: 'jwks_uri', message: 'give jwks or jwks_uri, not both' });
  if (client.admin_console && !client.first_party) {
    issues.push({ field: 'admin_console', message: 'only a first-party client may be an admin console' });
  }
  if (client.default_resource && client.allowed_resources && !client.allowed_resources.includes(client.default_resource)) {
    issues.push({ field: 'default_resource', message: 'must be one of allowed_resources' });
  }
  issues.push(...boundShapeIssues(client, method));
  return issues;
}
