import type { ClientService } from '../../identity/clients/index.ts';
import { clientCreate, clientId, clientPatch, secretRotation } from '../../identity/clients/input.ts';
import { pageQuery, roleAssignment } from '../../identity/input.ts';
import { decodeCursor, pageBody } from '../pagination.ts';
import { defineRoute, type AdminRoute } from '../route.ts';
import type { TokenSizeWatch } from '../../oidc/token-size.ts';
import { clientCreated, clientRead, clientView, secretRotated } from '../schemas/clients.ts';
import { pageOf } from '../schemas/common.ts';
import { z } from 'zod';

const byId = z.strictObject({ client_id: clientId });

export function clientRoutes(clients: ClientService, tokenSize?: Pick<TokenSizeWatch, 'forClient'>): AdminRoute[] {
  return [
    defineRoute({
      method: 'post', path: '/clients', operationId: 'createClient', tag: 'clients',
      summary: 'Register a client (RFC 7591 metadata); a confidential client\'s secret is returned only here',
      body: clientCreate, conflicts: true,
      response: { status: 201, description: 'The client, with client_secret for confidential clients', schema: clientCreated },
      async handler({ body }) {
        const { client, client_secret } = await clients.create(body);
        return { ...client, ...(client_secret ? { client_secret } : {}) };
      },
      audit: (_input, result) => ({ subject: result.client_id }),
    }),
    defineRoute({
      method: 'get', path: '/clients', operationId: 'listClients', tag: 'clients', summary: 'List clients by client_id',
      query: pageQuery,
      response: { status: 200, description: 'A page of clients', schema: pageOf(clientView) },
      handler: async ({ query }) => pageBody('clients', await clients.list({ limit: query.limit, after: decodeCursor('clients', query.cursor) })),
    }),
    defineRoute({
      method: 'get', path: '/clients/{client_id}', operationId: 'getClient', tag: 'clients', summary: 'Read a client',
      params: byId,
      response: { status: 200, description: 'The client', schema: clientRead },
      handler: async ({ params }) => ({
        ...(await clients.get(params.client_id)),
        token_size_warning: tokenSize?.forClient(params.client_id) ?? null,
      }),
    }),
    defineRoute({
      method: 'patch', path: '/clients/{client_id}', operationId: 'updateClient', tag: 'clients',
      summary: 'Change client metadata; null clears an optional field',
      params: byId, body: clientPatch,
      response: { status: 200, description: 'The updated client', schema: clientView },
      // The merged result is checked by ClientService.update: its Invalid names each failing field.
      handler: ({ params, body }) => clients.update(params.client_id, body),
    }),
    defineRoute({
      method: 'delete', path: '/clients/{client_id}', operationId: 'deleteClient', tag: 'clients',
      summary: 'Delete a client and its secrets; its tokens stop working when they expire',
      params: byId,
      response: { status: 204, description: 'Deleted' },
      handler: ({ params }) => clients.delete(params.client_id),
    }),
    defineRoute({
      method: 'post', path: '/clients/{client_id}/secrets', operationId: 'rotateClientSecret', tag: 'clients',
      summary: 'Issue a new client secret; previous secrets stay valid for previous_secret_expires_in seconds (default 3600)',
      params: byId, body: secretRotation, bodyOptional: true,
      response: { status: 201, description: 'The new secret (shown only here) and when the previous one expires', schema: secretRotated },
      handler: ({ params, body }) => clients.rotateSecret(params.client_id, body.previous_secret_expires_in),
      audit: ({ params, body }, result) => ({
        subject: params.client_id,
        details: { previous_secret_expires_in: body.previous_secret_expires_in, previous_secret_expires_at: result.previous_secret_expires_at },
      }),
    }),
    defineRoute({
      method: 'put', path: '/clients/{client_id}/roles', operationId: 'setClientRoles', tag: 'clients',
      summary: 'Replace the roles a client\'s client-credentials tokens carry',
      params: byId, body: roleAssignment,
      response: { status: 200, description: 'The updated client', schema: clientView },
      handler: ({ params, body }) => clients.setRoles(params.client_id, body.roles),
      audit: ({ params, body }) => ({ subject: params.client_id, details: { roles: body.roles } }),
    }),
  ];
}
