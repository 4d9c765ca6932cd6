import type { IncomingMessage } from 'node:http';
import type Koa from 'koa';
import { decodeComponent, decodeStorable, unstorableField } from '../domain/text.ts';

/** Which kind of endpoint a path is, so that a refusal takes that endpoint's own error format. */
export type EndpointKind = 'oauth' | 'admin' | 'page';

export function endpointKind(path: string): EndpointKind {
  if (path === '/admin' || path.startsWith('/admin/')) return 'admin';
  // RFC 8628 §3.1: the device authorization endpoint is a JSON endpoint; the rest of /device is pages.
  if (path === '/device/auth') return 'oauth';
  if (/^\/(interaction|auth|session\/end|device)(\/|$)/.test(path)) return 'page';
  return 'oauth';
}

/** Answers a refused request in the format of the endpoint it was sent to. */
export interface EdgeAnswer {
  (ctx: Koa.Context, refusal: Refusal): void;
}

export interface Refusal {
  status: number;
  kind: EndpointKind;
  error: string;
  description: string;
  /** The input at fault (a parameter name, `path`, `authorization`, `cookie`, `body`). */
  field?: string;
  headers?: Record<string, string>;
}

/** OAuth endpoints' own error body (RFC 6749 §5.2), the default when no page or problem applies. */
export function oauthAnswer(ctx: Koa.Context, status: number, error: string, description: string, headers: Record<string, string> = {}): void {
  ctx.status = status;
  for (const [name, value] of Object.entries(headers)) ctx.set(name, value);
  ctx.set('Cache-Control', 'no-store');
  ctx.body = { error, error_description: description };
}

/** What oidc-provider itself accepts as a body (lib/shared/selective_body.js); more is refused anyway. */
const PROVIDER_BODY_LIMIT = 56 * 1024;

const NOT_TEXT = 'is not valid UTF-8 text or contains NUL';

/** Which part of a request's URL or headers cannot be served, and why; undefined when all can. */
export function unstorableRequestPart(ctx: Koa.Context): { field: string; description: string } | undefined {
  // A literal `+` in a path is a plus, not a space.
  if (decodeComponent(ctx.path.replace(/\+/g, '%2B')) === undefined) return { field: 'path', description: `the path ${NOT_TEXT}` };
  const field = unstorableField(ctx.querystring);
  if (field) return { field, description: `query parameter ${field} ${NOT_TEXT}` };
  const basic = /^basic\s+(\S+)\s*$/i.exec(ctx.get('authorization'));
  if (basic) {
    // oidc-provider base64-decodes and then URL-decodes both halves (RFC 6749 §2.3.1).
    const decoded = decodeStorable(Buffer.from(basic[1]!, 'base64'));
    if (decoded === undefined || decoded.split(':').some((part) => decodeComponent(part) === undefined)) {
      return { field: 'authorization', description: `the Basic credentials are not valid UTF-8 text or contain NUL` };
    }
  }
  for (const cookie of ctx.get('cookie').split(';')) {
    const value = cookie.slice(cookie.indexOf('=') + 1).trim();
    if (value && decodeComponent(value.replace(/\+/g, '%2B')) === undefined) return { field: 'cookie', description: `a cookie ${NOT_TEXT}` };
  }
  return undefined;
}

/**
 * Refuses, before any route runs, a request whose URL or credentials carry text PostgreSQL
 * cannot store (NUL, invalid UTF-8): with the endpoint's own 400, never a store error's 500.
 */
export function refuseUnstorableInput(answer: EdgeAnswer, refused: (kind: EndpointKind) => void = () => undefined): Koa.Middleware {
  return async (ctx, next) => {
    const part = unstorableRequestPart(ctx);
    if (!part) {
      await next();
      return;
    }
    const kind = endpointKind(ctx.path);
    refused(kind);
    answer(ctx, { status: 400, kind, error: 'invalid_request', ...part });
  };
}

/**
 * Reads the body of a request bound for oidc-provider and checks it the same way. Returns the
 * bytes to hand on (oidc-provider reads `req.body` when the stream is already consumed), or a
 * reason to refuse. Only the two body types oidc-provider parses are read.
 */
export async function readProviderBody(ctx: Koa.Context): Promise<{ body: Buffer } | { refuse: string } | undefined> {
  const type = ctx.is('application/x-www-form-urlencoded', 'application/json');
  if (!type) return undefined;
  const form = type === 'application/x-www-form-urlencoded';
  if (!ctx.request.length && !ctx.get('transfer-encoding')) return undefined;
  if ((ctx.request.length ?? 0) > PROVIDER_BODY_LIMIT) {
    ctx.set('Connection', 'close');
    return { refuse: `the request body exceeds ${PROVIDER_BODY_LIMIT} bytes` };
  }
  const body = await readBody(ctx.req, PROVIDER_BODY_LIMIT);
  if (!body) {
    // The rest is never read; closing keeps it from being parsed as the next request.
    ctx.set('Connection', 'close');
    return { refuse: `the request body exceeds ${PROVIDER_BODY_LIMIT} bytes` };
  }
  const text = decodeStorable(body);
  if (text === undefined) return { refuse: `the request body ${NOT_TEXT}` };
  if (form) {
    const field = unstorableField(text);
    if (field) return { refuse: `parameter ${field} ${NOT_TEXT}` };
  } else if (/\\u0000/i.test(text)) {
    return { refuse: 'the request body contains NUL' };
  }
  return { body };
}

/**
 * The whole body, or undefined past `limit` bytes (reading stops there). Listeners rather than
 * an async iterator: this runs for every token request, and the iterator costs a few promises
 * and objects per chunk. Fails like the stream when the request is aborted.
 */
function readBody(req: IncomingMessage, limit: number): Promise<Buffer | undefined> {
  return new Promise((resolve, reject) => {
    const chunks: Buffer[] = [];
    let size = 0;
    const stop = (): void => {
      req.off('data', onData);
      req.off('end', onEnd);
      req.off('error', onError);
      req.off('close', onClose);
    };
    function onData(chunk: Buffer): void {
      size += chunk.length;
      if (size > limit) {
        stop();
        req.pause();
        resolve(undefined);
      } else {
        chunks.push(chunk);
      }
    }
    function onEnd(): void {
      stop();
      resolve(chunks.length === 1 ? chunks[0]! : Buffer.concat(chunks, size));
    }
    function onError(error: Error): void {
      stop();
      reject(error);
    }
    function onClose(): void {
      stop();
      reject(Object.assign(new Error('the request was aborted before its body ended'), { code: 'ERR_STREAM_PREMATURE_CLOSE' }));
    }
    req.on('data', onData);
    req.on('end', onEnd);
    req.on('error', onError);
    req.on('close', onClose);
  });
}
