import type Koa from 'koa';
import { z } from 'zod';
import { Conflict, DomainError, Invalid, NotFound } from '../domain/errors.ts';
import { isStoreUnavailable } from '../store/unavailable.ts';

export interface FieldError {
  field: string;
  message: string;
}

const TITLES: Record<number, string> = {
  400: 'Bad Request', 401: 'Unauthorized', 403: 'Forbidden', 404: 'Not Found', 405: 'Method Not Allowed',
  409: 'Conflict', 413: 'Content Too Large', 415: 'Unsupported Media Type', 429: 'Too Many Requests', 500: 'Internal Server Error',
  503: 'Service Unavailable',
};

const SLUGS: Record<number, string> = {
  400: 'invalid-request', 401: 'unauthorized', 403: 'forbidden', 404: 'not-found', 405: 'method-not-allowed',
  409: 'conflict', 413: 'content-too-large', 415: 'unsupported-media-type', 429: 'too-many-requests', 500: 'internal',
  503: 'unavailable',
};

/** The one error type of the admin API, rendered as RFC 9457 problem details. */
export class Problem extends Error {
  override name = 'Problem';
  constructor(
    readonly status: number,
    readonly detail: string,
    readonly errors?: FieldError[],
    /** Response headers the problem implies (WWW-Authenticate, Allow, Retry-After). */
    readonly headers: Record<string, string> = {},
    /** RFC 9457 §3.2 extension members, e.g. `possible_at` of a refused key rotation. */
    readonly extensions: Record<string, string> = {},
  ) {
    super(detail);
  }

  get body(): ProblemBody {
    return {
      type: `urn:keyward:problem:${SLUGS[this.status] ?? 'error'}`,
      title: TITLES[this.status] ?? 'Error',
      status: this.status,
      detail: this.detail,
      ...(this.errors?.length ? { errors: this.errors } : {}),
      ...this.extensions,
    };
  }
}

export interface ProblemBody {
  type: string;
  title: string;
  status: number;
  detail: string;
  errors?: FieldError[];
  [extension: string]: unknown;
}

/** The schema of every error body, for the OpenAPI document. */
export const ProblemSchema = z.object({
  type: z.string(),
  title: z.string(),
  status: z.number().int(),
  detail: z.string(),
  errors: z.array(z.object({ field: z.string(), message: z.string() })).optional(),
  possible_at: z.string().optional().describe('When a refused key rotation becomes possible'),
});

/** A field path as clients name it: `redirect_uris[0]`, `jwks.keys[1].kty`. */
function fieldName(path: readonly PropertyKey[]): string {
  return path.reduce<string>((name, key) => (typeof key === 'number' ? `${name}[${key}]` : name ? `${name}.${String(key)}` : String(key)), '');
}

/** Turns zod issues into the `errors` array of a 400 problem. */
export function validationProblem(error: z.ZodError, where: 'body' | 'query' | 'path'): Problem {
  const errors = error.issues.slice(0, 20).map((issue) => ({
    field: fieldName(issue.path) || (issue.code === 'unrecognized_keys' ? issue.keys.join(', ') : where),
    message: issue.message,
  }));
  const summary = errors.map((e) => `${e.field}: ${e.message}`).slice(0, 3).join('; ');
  return new Problem(400, `invalid ${where}: ${summary}`, errors);
}

/** Maps domain errors to problems; anything else stays an unexpected error (500). */
export function toProblem(error: unknown): Problem | undefined {
  if (error instanceof Problem) return error;
  if (isStoreUnavailable(error)) {
    return new Problem(503, 'the database is unreachable; retry shortly', undefined, { 'Retry-After': '2' });
  }
  if (error instanceof DomainError) {
    const fields = Object.entries(error.fields ?? {}).map(([field, message]) => ({ field, message }));
    if (error instanceof NotFound) return new Problem(404, error.message);
    if (error instanceof Conflict) {
      if (!error.retryAt) return new Problem(409, error.message, fields);
      return new Problem(409, error.message, fields, { 'Retry-After': error.retryAt.toUTCString() }, { possible_at: error.retryAt.toISOString() });
    }
    if (error instanceof Invalid) return new Problem(400, error.message, fields);
  }
  return undefined;
}

export function sendProblem(ctx: Koa.Context, problem: Problem): void {
  ctx.status = problem.status;
  for (const [name, value] of Object.entries(problem.headers)) ctx.set(name, value);
  ctx.set('Cache-Control', 'no-store');
  ctx.type = 'application/problem+json';
  ctx.body = problem.body;
}
