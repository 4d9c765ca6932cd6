import type { KoaContextWithOIDC } from 'oidc-provider';
import type { JwtTokenRequest } from '../jwt/endpoints.ts';

/** Keyward's own answers for JWT access tokens (jwt/endpoints.ts). */
export interface JwtTokenAnswers {
  introspect(request: JwtTokenRequest): Promise<Record<string, unknown>>;
  revoke(request: JwtTokenRequest): Promise<void>;
}

/**
 * oidc-provider refuses every JWT at introspection and revocation with
 * `unsupported_token_type` (`rejectStructuredTokens`, lib/shared/reject_structured_tokens.js),
 * before `features.introspection.allowedPolicy` / `features.revocation.allowedPolicy` are
 * consulted, and has no hook for structured tokens. It does everything before that well
 * (body parsing, client authentication with every method, duplicate-parameter checks), so
 * its refusal is replaced, only once it has authenticated the client. Opaque tokens (refresh
 * tokens, ...) never reach this code.
 */
export async function answerJwtTokens(ctx: KoaContextWithOIDC, oidc: KoaContextWithOIDC['oidc'], answers: JwtTokenAnswers): Promise<void> {
  if (oidc.route !== 'introspection' && oidc.route !== 'revocation') return;
  const refusedAsJwt = ctx.status === 400 && (ctx.body as { error?: string } | undefined)?.error === 'unsupported_token_type';
  const token = oidc.params?.token;
  if (!refusedAsJwt || !oidc.client || typeof token !== 'string') return;

  const request = { requester: oidc.client.clientId, token, ip: ctx.ip };
  const body = oidc.route === 'introspection' ? await answers.introspect(request) : await answers.revoke(request).then(() => '');
  ctx.status = 200;
  ctx.body = body;
}
