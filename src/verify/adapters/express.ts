import type { AccessTokenClaims, Verifier } from '../verifier.ts';
import { single } from '../request.ts';
import { authorize, peerCertificate, refusal, type AdapterOptions } from './core.ts';

/** The parts of an Express (or plain Node) request this middleware reads; no dependency on express. */
export interface ExpressLikeRequest {
  method?: string | undefined;
  url?: string | undefined;
  originalUrl?: string | undefined;
  protocol?: string | undefined;
  headers: Record<string, string | string[] | undefined>;
  socket?: unknown;
  /** Set to the verified claims. */
  auth?: AccessTokenClaims;
}

export interface ExpressLikeResponse {
  statusCode: number;
  setHeader(name: string, value: string): unknown;
  end(body?: string): unknown;
}

export type ExpressLikeNext = (error?: unknown) => void;

/**
 * `app.use(expressAuth(verifier, { require: [requireScopes('orders:read')] }))`: verifies the
 * bearer (or DPoP) token, sets `req.auth` to the claims, answers 401/403/503 itself.
 * Works on a plain `node:http` request and response too.
 */
export function expressAuth<Req extends ExpressLikeRequest>(verifier: Verifier, options: AdapterOptions<Req> = {}) {
  const check = async (req: Req): Promise<AccessTokenClaims> => {
    const header = (name: string) => single(req.headers[name], name);
    return authorize(verifier, {
      authorization: header('authorization'),
      dpop: header('dpop'),
      method: req.method ?? 'GET',
      // Express sets `protocol` (honouring `trust proxy`); a plain Node request says it through its socket.
      url: () => `${req.protocol ?? (isTls(req.socket) ? 'https' : 'http')}://${header('host') ?? ''}${req.originalUrl ?? req.url ?? '/'}`,
      certificate: () => (options.certificate ? options.certificate(req) : peerCertificate(req.socket)),
    }, options.require);
  };
  return (req: Req, res: ExpressLikeResponse, next: ExpressLikeNext): void => {
    check(req).then((claims) => {
      req.auth = claims;
      next();
    }, (error: unknown) => {
      const answer = refusal(error, options.realm);
      if (!answer) return next(error);
      res.statusCode = answer.status;
      for (const [name, value] of Object.entries(answer.headers)) res.setHeader(name, value);
      res.end(answer.body);
    });
  };
}

function isTls(socket: unknown): boolean {
  return (socket as { encrypted?: unknown } | undefined)?.encrypted === true;
}
