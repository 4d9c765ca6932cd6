import type Koa from 'koa';
import { z } from 'zod';
import type { AuditWriter } from '../audit/writer.ts';
import { requestIdOf } from '../log/logger.ts';
import type { Principal } from './auth.ts';
import { checkQuery, readJsonBody } from './body.ts';
import { Problem, toProblem, validationProblem } from './problem.ts';

export type Method = 'get' | 'post' | 'put' | 'patch' | 'delete';

export interface RouteInput<P, Q, B> {
  params: P;
  query: Q;
  body: B;
  principal: Principal;
}

/** What an admin change records about itself, never a secret. */
export interface AuditNote {
  subject: string;
  details?: Record<string, unknown>;
}

/**
 * One operation of the admin API. The same object drives the koa route, the validation and
 * the OpenAPI document, so the document cannot drift from what the server does.
 */
export interface RouteSpec<P extends z.ZodType, Q extends z.ZodType, B extends z.ZodType, R> {
  method: Method;
  /** OpenAPI path template below /admin/v1, e.g. `/clients/{client_id}`. */
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  params?: P;
  query?: Q;
  body?: B;
  /** The body may be omitted entirely (every field optional). */
  bodyOptional?: boolean;
  response: { status: 200 | 201 | 204; description: string; schema?: z.ZodType };
  /** Documents that the operation can answer 409. */
  conflicts?: boolean;
  handler(input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>): Promise<R>;
  /** Subject and details of the audit event of a successful change (writes only). */
  audit?(input: RouteInput<z.output<P>, z.output<Q>, z.output<B>>, result: R): AuditNote;
}

/** A route with its types erased, ready to mount and to document. */
export interface AdminRoute {
  method: Method;
  path: string;
  operationId: string;
  summary: string;
  tag: string;
  params: z.ZodType | undefined;
  query: z.ZodType | undefined;
  body: z.ZodType | undefined;
  bodyOptional: boolean;
  response: { status: number; description: string; schema?: z.ZodType };
  conflicts: boolean;
  run(ctx: Koa.Context, principal: Principal, audit: AuditWriter): Promise<void>;
}

const nothing = z.object({});

/** The subject of a request that failed: the entity named in its path, if any. */
function pathSubject(params: Record<string, string>): string {
  return Object.values(params)[0] ?? '';
}

export function defineRoute<P extends z.ZodType = typeof nothing, Q extends z.ZodType = typeof nothing, B extends z.ZodType = typeof nothing, R = unknown>(
  spec: RouteSpec<P, Q, B, R>,
): AdminRoute {
  const write = spec.method !== 'get';
  return {
    method: spec.method,
    path: spec.path,
    operationId: spec.operationId,
    summary: spec.summary,
    tag: spec.tag,
    params: spec.params,
    query: spec.query,
    body: spec.body,
    bodyOptional: spec.bodyOptional ?? false,
    response: spec.response,
    conflicts: spec.conflicts ?? false,
    async run(ctx, principal, audit) {
      const rawParams = ctx.params as Record<string, string>;
      let fields: string[] = [];
      try {
        const params = (spec.params ?? nothing).safeParse(rawParams);
        // A path segment that cannot name an entity names none: 404, like an unknown id.
        if (!params.success) throw new Problem(404, `no such resource: ${ctx.path}`);
        checkQuery(ctx.query);
        const query = (spec.query ?? nothing).safeParse({ ...ctx.query });
        if (!query.success) throw validationProblem(query.error, 'query');
        let bodyValue: unknown = {};
        if (spec.body) {
          bodyValue = await readJsonBody(ctx);
          if (bodyValue !== null && typeof bodyValue === 'object' && !Array.isArray(bodyValue)) fields = Object.keys(bodyValue).slice(0, 30);
        }
        const body = (spec.body ?? nothing).safeParse(bodyValue);
        if (!body.success) throw validationProblem(body.error, 'body');
        const input = { params: params.data, query: query.data, body: body.data, principal } as RouteInput<z.output<P>, z.output<Q>, z.output<B>>;
        const result = await spec.handler(input);
        if (write) {
          const note = spec.audit?.(input, result) ?? { subject: pathSubject(rawParams) };
          audit.record({
            type: 'admin.change', actor: principal.actor, subject: note.subject, outcome: 'success', ip: ctx.ip, requestId: requestIdOf(ctx),
            details: { action: spec.operationId, ...(fields.length ? { fields } : {}), ...note.details },
          });
        }
        ctx.status = spec.response.status;
        ctx.set('Cache-Control', 'no-store');
        if (spec.response.status !== 204) ctx.body = result;
      } catch (error) {
        if (write) {
          audit.record({
            type: 'admin.change', actor: principal.actor, subject: pathSubject(rawParams), outcome: 'failure', ip: ctx.ip, requestId: requestIdOf(ctx),
            details: { action: spec.operationId, status: toProblem(error)?.status ?? 500 },
          });
        }
        throw error;
      }
    },
  };
}

/** `/clients/{client_id}` → `/clients/:client_id` (koa-router syntax). */
export function koaPath(path: string): string {
  return path.replace(/\{([A-Za-z_][A-Za-z0-9_]*)\}/g, ':$1');
}

/** A matcher for the path template, to tell 405 from 404 on unrouted requests. */
export function pathMatcher(prefix: string, path: string): RegExp {
  const pattern = path.split(/\{[A-Za-z_][A-Za-z0-9_]*\}/).map((part) => part.replace(/[.*+?^${}()|[\]\\]/g, '\\$&')).join('[^/]+');
  return new RegExp(`^${prefix}${pattern}/?$`);
}
