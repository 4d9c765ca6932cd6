import type { AuditQuery } from '../../audit/query.ts';
import { keyRotate } from '../../keys/input.ts';
import type { ConsumerReport, KeyView, RotateOptions } from '../../keys/service.ts';
import { decodeCursor, pageBody } from '../pagination.ts';
import { defineRoute, type AdminRoute } from '../route.ts';
import { pageOf } from '../schemas/common.ts';
import { auditQuery, auditView, consumerQuery, consumerReport, keyList } from '../schemas/identity.ts';

/** What the admin API needs of keys/service.ts. */
export interface AdminKeyService {
  list(): Promise<KeyView[]>;
  rotate(options: RotateOptions): Promise<KeyView[]>;
  consumers(limit: number): Promise<ConsumerReport>;
}

export function keyRoutes(keys: AdminKeyService): AdminRoute[] {
  return [
    defineRoute({
      method: 'get', path: '/keys', operationId: 'listKeys', tag: 'keys',
      summary: 'Signing keys (current, next, previous) with their state, publication and next scheduled transition (public information only)',
      response: { status: 200, description: 'Every signing key', schema: keyList },
      handler: async () => ({ items: await keys.list() }),
    }),
    defineRoute({
      method: 'get', path: '/keys/consumers', operationId: 'listUnreadyJwksConsumers', tag: 'keys',
      summary: 'JWKS consumers seen in the last rotation interval that have not fetched the JWKS since the newest next key was published',
      query: consumerQuery,
      response: { status: 200, description: 'Consumers not ready, newest fetch first', schema: consumerReport },
      handler: async ({ query }) => keys.consumers(query.limit),
    }),
    defineRoute({
      method: 'post', path: '/keys/rotate', operationId: 'rotateKeys', tag: 'keys',
      summary: 'Activate the next key now (409 with possible_at while a cached JWKS may lack it); emergency also withdraws the current key at once',
      body: keyRotate, bodyOptional: true, conflicts: true,
      response: { status: 200, description: 'The new key set', schema: keyList },
      handler: async ({ body, principal }) => ({
        items: await keys.rotate({ ...(body.alg ? { alg: body.alg } : {}), emergency: body.emergency ?? false, actor: principal.actor }),
      }),
      audit: ({ body }) => ({ subject: 'signing-keys', details: { alg: body.alg ?? 'all', emergency: body.emergency ?? false } }),
    }),
  ];
}

export function auditRoutes(audit: Pick<AuditQuery, 'find'>): AdminRoute[] {
  return [
    defineRoute({
      method: 'get', path: '/audit', operationId: 'listAuditEvents', tag: 'audit',
      summary: 'Audit events, newest first, filtered by type, actor and time',
      query: auditQuery,
      response: { status: 200, description: 'A page of audit events', schema: pageOf(auditView) },
      handler: async ({ query }) => pageBody('audit', await audit.find(
        { type: query.type, actor: query.actor, since: query.since ? new Date(query.since) : undefined },
        { limit: query.limit, after: decodeCursor('audit', query.cursor) },
      )),
    }),
  ];
}
