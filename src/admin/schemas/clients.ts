import { z } from 'zod';
import { storedMetadata } from '../../identity/clients/index.ts';

export const clientView = z.object({
  client_id: z.string(),
  client_name: z.string(),
  ...storedMetadata.shape,
  roles: z.array(z.string()),
  first_party: z.boolean(),
  resource_server: z.string().nullable(),
  disabled: z.boolean(),
  secrets: z.array(z.object({ id: z.string(), created_at: z.string(), expires_at: z.string().nullable() })),
  created_at: z.string(),
  updated_at: z.string(),
});

/** GET /clients/{id}: the client plus what this instance saw of its token sizes. */
export const clientRead = clientView.extend({
  token_size_warning: z.object({
    token: z.string(), audience: z.string().optional(), size: z.number().int(), threshold: z.number().int(), at: z.string(),
  }).nullable().describe('The latest token larger than 4 KB issued to this client, as seen by the instance answering (null: none). Roles per API keep tokens small.'),
});

export const clientCreated = clientView.extend({
  client_secret: z.string().optional().describe('Only in this response, only for confidential clients; store it now.'),
});

export const secretRotated = z.object({ client_secret: z.string(), previous_secret_expires_at: z.string() });
