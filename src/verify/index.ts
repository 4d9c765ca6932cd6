/**
 * keyward/verify: how a service or gateway verifies Keyward access tokens locally, without
 * calling Keyward per request. Depends on jose only (enforced by .dependency-cruiser.cjs).
 */
export { createVerifier, type AccessTokenClaims, type Verifier, type VerifierOptions, type VerifyInput } from './verifier.ts';
export { InsufficientScope, InvalidRequest, InvalidToken, KeySetUnavailable, MissingToken, VerifyError, type BearerErrorCode, type Scheme } from './errors.ts';
export { requireRoles, requireScopes, rolesOf, scopesOf, type Guard } from './guards.ts';
export { JwksCache, type FetchReason, type JwksOptions } from './jwks.ts';
export { certificateThumbprint, type CertificateInput, type DpopInput } from './binding.ts';
export { credentials, type Credentials } from './request.ts';
export { authorize, refusal, type AdapterOptions, type RequestFacts, type Refusal } from './adapters/core.ts';
export { expressAuth, type ExpressLikeNext, type ExpressLikeRequest, type ExpressLikeResponse } from './adapters/express.ts';
export { koaAuth, type KoaAuthState, type KoaLikeContext } from './adapters/koa.ts';
export { withAuth } from './adapters/fetch.ts';
export { ASYMMETRIC_ALGS, KEYWARD_ALGS } from './algorithms.ts';
