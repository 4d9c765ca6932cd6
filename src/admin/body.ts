import type Koa from 'koa';
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
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > limit) throw tooLarge(ctx, limit);
    chunks.push(chunk);
  }
  const text = Buffer.concat(chunks).toString('utf8');
  if (!text.trim()) return {};
  try {
    return JSON.parse(text) as unknown;
  } catch {
    throw new Problem(400, 'request body is not valid JSON', [{ field: 'body', message: 'malformed JSON' }]);
  }
}

function tooLarge(ctx: Koa.Context, limit: number): Problem {
  // The rest of the body is never read; closing the connection keeps it from being parsed as the next request.
  ctx.set('Connection', 'close');
  return new Problem(413, `request body exceeds ${limit} bytes`);
}
