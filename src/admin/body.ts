import type Koa from 'koa';
import { decodeStorable, isStorable } from '../domain/text.ts';
import { Problem } from './problem.ts';

/** Admin bodies are small metadata documents; a JWKS with a few RSA keys fits easily. */
export const MAX_BODY_BYTES = 64 * 1024;

/**
 * Reads a JSON request body, refusing more than `limit` bytes before buffering them.
 * An absent body reads as `{}` so that bodies whose every field is optional may be omitted.
 */
export async function readJsonBody(ctx: Koa.Context, limit = MAX_BODY_BYTES): Promise<unknown> {
  const declared = Number(ctx.get('content-length') || 0);
  const chunked = ctx.get('transfer-encoding') !== '';
  if (!chunked && declared === 0) return {};
  if (declared > limit) throw tooLarge(ctx, limit);
  if (!ctx.is('application/json', '+json')) {
    throw new Problem(415, 'request bodies must be application/json');
  }
  const text = decodeStorable(await readUpTo(ctx, limit));
  if (text === undefined) throw new Problem(400, 'request body is not valid UTF-8 text', [{ field: 'body', message: 'invalid UTF-8 or NUL' }]);
  if (!text.trim()) return {};
  let value: unknown;
  try {
    value = JSON.parse(text) as unknown;
  } catch {
    throw new Problem(400, 'request body is not valid JSON', [{ field: 'body', message: 'malformed JSON' }]);
  }
  checkStorable(value, 0);
  return value;
}

const MAX_DEPTH = 16;

/**
 * PostgreSQL refuses NUL in text and jsonb, and deep nesting only costs: both are refused here
 * as a 400, before a store error could turn them into a 500.
 */
function checkStorable(value: unknown, depth: number): void {
  if (depth > MAX_DEPTH) throw new Problem(400, `request body is nested deeper than ${MAX_DEPTH} levels`, [{ field: 'body', message: 'too deeply nested' }]);
  if (typeof value === 'string') {
    if (!isStorable(value)) throw new Problem(400, 'strings must not contain NUL characters or unpaired surrogates', [{ field: 'body', message: 'contains NUL or an unpaired surrogate' }]);
  } else if (Array.isArray(value)) {
    for (const item of value) checkStorable(item, depth + 1);
  } else if (value !== null && typeof value === 'object') {
    for (const [key, item] of Object.entries(value)) {
      checkStorable(key, depth);
      checkStorable(item, depth + 1);
    }
  }
}

/** The same rule for query parameters. */
export function checkQuery(query: Record<string, unknown>): void {
  for (const [key, value] of Object.entries(query)) {
    if (`${key}${String(value)}`.includes('\0')) throw new Problem(400, 'query parameters must not contain NUL characters', [{ field: key, message: 'contains NUL' }]);
  }
}

/**
 * The body's bytes, or 413 once more than `limit` bytes arrived. The request stream is paused,
 * not destroyed, so the socket (and what is read from it, such as the client address for the
 * audit) stays until the answer is written.
 */
function readUpTo(ctx: Koa.Context, limit: number): Promise<Buffer> {
  const req = ctx.req;
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const done = (error?: Error): void => {
      req.off('data', onData).off('end', onEnd).off('error', done);
      if (error) reject(error); else resolve(Buffer.concat(chunks));
    };
    const onData = (chunk: Buffer): void => {
      size += chunk.length;
      if (size > limit) {
        req.pause();
        done(tooLarge(ctx, limit));
        return;
      }
      chunks.push(chunk);
    };
    const onEnd = (): void => done();
    req.on('data', onData).on('end', onEnd).on('error', done);
  });
}

function tooLarge(ctx: Koa.Context, limit: number): Problem {
  // The rest of the body is never read; closing the connection keeps it from being parsed as the next request.
  ctx.set('Connection', 'close');
  return new Problem(413, `request body exceeds ${limit} bytes`);
}
