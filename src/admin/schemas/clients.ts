import { z } from 'zod';
import { AUTH_METHODS, GRANT_TYPES } from '../../identity/clients/index.ts';

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
