/**
 * Every place Keyward reaches into oidc-provider beyond its configuration, in one module.
 * Verified against oidc-provider 9.13.3 (package.json pins ~9.13.3); each assumption below
 * is asserted directly by test/oidc/provider-contract.test.ts, so an upgrade that breaks one
 * fails there by name. Paths are inside node_modules/oidc-provider.
 *
 * Internals relied on:
 * - `Client.prototype.compareClientSecret(actual)` (lib/models/client.js): called, and
 *   awaited, by client_secret_basic / client_secret_post authentication
 *   (`authenticateClient`, lib/shared/client_auth.js); `provider.Client` is a class per
 *   Provider. → client-secret.ts
 * - Client metadata (lib/helpers/client_schema.js) requires `client_secret` for
 *   secret-authenticated clients, and lib/models/client.js derives symmetric keys from it
 *   only for HS*, A*KW and `dir` algorithms and client_secret_jwt, none of which discovery
 *   offers. → SECRET_PLACEHOLDER
 * - `allowedGrantTypeCheck` (lib/actions/token.js) throws `invalid_request` when
 *   `client.grantTypeAllowed(grant_type)` is false, after client authentication; so does
 *   `checkClientGrantType` (lib/actions/authorization/client.js) on device_authorization.
 *   → unauthorized-client.ts
 * - `setWWWAuthenticateHeader` (lib/shared/client_auth.js) adds a challenge to a 401 only
 *   when the Authorization header was used. → client-challenge.ts
 * - `rejectStructuredTokens` (lib/shared/reject_structured_tokens.js) answers
 *   `unsupported_token_type` for any JWT at introspection and revocation, after client
 *   authentication and before `allowedPolicy`. → jwt-token-refusal.ts
 * - The client_credentials handler (lib/actions/grants/client_credentials.js) calls
 *   `getResourceServerInfo` before `validateClientScope` (lib/helpers/grant_authorization.js),
 *   both reading `ctx.oidc.params.scope`. → requested-scope.ts
 * - `OIDCContext#urlFor` (lib/helpers/oidc_context.js) resolves every published URL against
 *   `ctx.href`, and cookies are Secure when `ctx.secure`; `Provider` is a Koa app whose
 *   `request` prototype supplies both. → issuer-origin.ts
 * - `Provider#use` (lib/provider.js) places middleware around the router; the error handler
 *   (lib/shared/error_handler.js) renders `{ error, error_description }` as the body and
 *   emits `grant.error` before such a middleware resumes; `ctx.oidc` exists only inside a
 *   route (lib/helpers/initialize_app.js). → every after-the-fact answer here
 * - `PushedAuthorizationRequest.find` is called only when /auth loads a request_uri
 *   (lib/actions/authorization/pushed_authorization_requests.js) and by respond
 *   (lib/actions/authorization/respond.js), which tolerates finding nothing.
 *   → one-time-request-uri.ts
 * - The `form_post` response mode (lib/response_modes/form_post.js), which resume also uses to
 *   end the previous session on an account switch, renders HTML with no hook of ours: one
 *   inline `<script>` and one `<form action="…">`; on resume the interaction is
 *   `ctx.oidc.entities.Interaction` before that page renders. → html-pages.ts
 * - `authenticateClient` (lib/shared/client_auth.js) takes an assertion's client id from its
 *   `sub` and accepts only its own methods; the urlencoded body parser
 *   (lib/shared/selective_body.js) reads `ctx.request.body` when the request stream was already
 *   consumed; `Provider#pathFor` names each route's path; a private_key_jwt client's assertion
 *   is verified against its `jwks` with aud = the issuer accepted; `ReplayDetection.unique`
 *   (lib/models/replay_detection.js) looks its id up as sha256(iss + jti), base64url, with
 *   `find` then `upsert`. → federated-jwt.ts
 * - The user-code form given to `features.deviceFlow.userCodeInputSource`
 *   (lib/helpers/user_code_form.js) carries its action and the `xsrf` value as attributes
 *   Keyward's own form re-posts. → device-forms.ts
 * - The device flow never answers `slow_down` nor sends `interval`: the device authorization
 *   response is a JSON object on route `device_authorization`, and a pending device code is
 *   answered 400 `{ error: 'authorization_pending' }` on route `token`. → device-polling.ts
 * - A failed `POST /device` without a live session makes `ensureSessionSave`
 *   (lib/helpers/initialize_app.js) throw `TypeError: persist can only be called on previously
 *   persisted Sessions` after the error page rendered. → device-session.ts
 * - `Client.find(id)` (lib/models/client.js, static, per Provider) is how every caller looks a
 *   client up (all await it), and the Client it answers is reused across requests (its own
 *   LRU); a Client built from unchanged metadata is interchangeable. → client-find.ts
 * - `fetchRequest` (lib/helpers/fetch_request.js) sets `options.dispatcher` to its SSRF-guarded
 *   undici Agent, then calls the `fetch` configuration with those options. → private-fetch.ts
 *
 * Supported extension points are used wherever one exists (configuration, `grant.*` events,
 * `getResourceServerInfo`, `extraClientMetadata`); none exists for the points above.
 */
import type { KoaContextWithOIDC, Provider } from 'oidc-provider';
import type { AuditEvent } from '../../audit/events.ts';
import { JwtTokenEndpoints, type JwtEndpointDeps } from '../jwt/endpoints.ts';
import { addClientChallenge } from './client-challenge.ts';
import { pageOf, type PageHeaders } from './html-pages.ts';
import { pinIssuerOrigin } from './issuer-origin.ts';
import { installSecretVerification, type SecretVerifier } from './client-secret.ts';
import { oidcOf } from './context.ts';
import { answerJwtTokens } from './jwt-token-refusal.ts';
import { answerUnauthorizedClient } from './unauthorized-client.ts';
import { installFederatedJwt, type FederatedClientAuth, type InternalAssertionKey } from './federated-jwt.ts';

export { SECRET_PLACEHOLDER } from './client-secret.ts';
export { federatedAuthenticationOf, InternalAssertionKey, internalAssertionReplay, JWT_BEARER, type FederatedClientAuth } from './federated-jwt.ts';
export { installClientFind } from './client-find.ts';
export { oneTimeRequestUri } from './one-time-request-uri.ts';
export { privateNetworkFetch } from './private-fetch.ts';
export { deviceFormFields, type DeviceFormFields } from './device-forms.ts';
export { devicePolling, type PollGate } from './device-polling.ts';
export { deviceSessionRecovery } from './device-session.ts';
export { narrowRequestedScope, requestedScopes } from './requested-scope.ts';
export { tokenErrorAnswered } from './unauthorized-client.ts';

export type { PageHeaders, ProviderPage } from './html-pages.ts';

export interface OverrideDeps {
  /** The page headers for the HTML oidc-provider renders itself (form_post). */
  pageHeaders?: PageHeaders | undefined;
  issuer: string;
  clients: SecretVerifier;
  jwtTokens: JwtEndpointDeps;
  /** federated_jwt client authentication (federated-jwt.ts); refusals are audited when `audit` is given. */
  federation?: { auth: FederatedClientAuth; key: InternalAssertionKey; audit?: FederationAudit };
}

/** The part of the audit writer federated-jwt.ts's refusals go to. */
export interface FederationAudit {
  recordRepeatable(event: AuditEvent, key: string): void;
}

/** Installs every override on a freshly built Provider (once per instance). */
export function installOverrides(provider: Provider, deps: OverrideDeps): void {
  pinIssuerOrigin(provider, deps.issuer);
  installSecretVerification(provider, deps.clients);
  if (deps.federation) {
    const { audit } = deps.federation;
    installFederatedJwt(provider, deps.federation.auth, deps.federation.key, audit ? (ctx, clientId, description) => {
      // An unauthenticated caller can repeat this at will: summarized per client and address.
      audit.recordRepeatable({
        type: 'token.issued', actor: clientId, outcome: 'failure', ip: ctx.ip,
        details: { error: 'invalid_client', auth_method: 'federated_jwt', error_description: description.slice(0, 500) },
      }, `${clientId}|${ctx.ip}`);
    } : undefined);
  }
  const jwtTokens = new JwtTokenEndpoints(deps.jwtTokens);
  // One middleware around every route (it sits on the token endpoint's path), its steps in
  // order: the JWT answers first turn their 400 into a 200, so the later steps, which look at
  // the status, leave those alone.
  provider.use(async (ctx, next) => {
    await next();
    const oidc = oidcOf(ctx as KoaContextWithOIDC);
    if (!oidc) return;
    await answerJwtTokens(ctx as KoaContextWithOIDC, oidc, jwtTokens);
    answerUnauthorizedClient(ctx as KoaContextWithOIDC, oidc);
    addClientChallenge(ctx as KoaContextWithOIDC, oidc, provider.issuer);
    if (deps.pageHeaders) {
      const page = pageOf(ctx as KoaContextWithOIDC);
      if (page) deps.pageHeaders(ctx as KoaContextWithOIDC, page);
    }
  });
}
