import type { JWK } from 'jose';
import Provider, { type Configuration, type JWKS, type KoaContextWithOIDC } from 'oidc-provider';
import type { ClientService } from '../identity/clients/index.ts';
import type { ResourceService } from '../identity/resources.ts';
import type { RoleService } from '../identity/roles.ts';
import { claimsConfiguration, type ClaimDeps } from './claims.ts';
import { clientAssertionConfiguration } from './client-assertion.ts';
import type { ClientInstances } from './client-instances.ts';
import { ClientAdapter, clientConfiguration, oidcScopesOf } from './clients.ts';
import { AccessTokenVerifier } from './jwt/access-token.ts';
import type { RevocationList } from './jwt/revocation-list.ts';
import { installClientFind, installOverrides, InternalAssertionKey, internalAssertionReplay, oneTimeRequestUri, privateNetworkFetch, type FederatedClientAuth, type PageHeaders } from './overrides/index.ts';
import { policyConfiguration } from './policy.ts';
import { refreshRotationConfiguration } from './refresh-rotation.ts';
import { resourceConfiguration, resourceServerInfo } from './resources.ts';
import { singleUse, type ArtifactAdapter } from './single-use.ts';
import { answerStoreOutage } from './store-outage.ts';
import { senderConstraintConfiguration, type SenderConstraintOptions } from './sender-constraints.ts';
import { introspectionConfiguration } from './token-visibility.ts';
import { registerTokenExchange, revokedThroughChain, type ExchangeLinks } from './grants/token-exchange.ts';
import { installTokenSizeWatch, type TokenSizeWatch } from './token-size.ts';
import { installTokenAudit, type AuditSink, type TokenFingerprint } from './token-audit.ts';
import { installDeviceAudit } from './device-audit.ts';
import type { Middleware } from 'koa';

export interface ProviderDeps {
  issuer: string;
  /** Called for each request answered 503 because the store was unreachable (metrics). */
  onStoreOutage?: () => void;
  /** Trusted reverse proxies in front; see http/app.ts. */
  proxyHops?: number;
  /** Storage for every model but Client (src/store/oidc-adapters.ts). */
  adapter: (model: string) => ArtifactAdapter;
  /** Revoked JWT access tokens, shared with the admin API's verifier. */
  revocations: RevocationList;
  clients: ClientService;
  roles: RoleService;
  resources: ResourceService;
  /** Private JWKs in signing preference order (see keys/keyset.ts). */
  jwks: JWKS;
  /** Secrets for signing cookies, shared by every instance. */
  cookieKeys: string[];
  now: () => Date;
  userRoles?: ClaimDeps['userRoles'];
  /** KEYWARD_ALLOW_PRIVATE_JWKS_URI: outgoing requests may reach private and loopback addresses. */
  allowPrivateNetworks?: boolean;
  /** Page headers for the HTML oidc-provider renders itself (see overrides/html-pages.ts). */
  pageHeaders?: PageHeaders;
  /** Further configuration parts (interactions, accounts, ...) owned by other modules. */
  extra?: Partial<Configuration>[];
  /** Where token issuance and revocation are audited (buffered). */
  audit?: AuditSink;
  /** Names opaque tokens in the audit trail without their value (see token-audit.ts). */
  tokenFingerprint?: TokenFingerprint;
  /** Client authentication with external tokens (federated_jwt); without it such clients do not exist. */
  federation?: FederatedClientAuth;
  /** mTLS (RFC 8705) and DPoP (RFC 9449); absent: both off. */
  senderConstraints?: SenderConstraintOptions;
  /** RFC 8693 token exchange: links from exchanged tokens to their chain (src/store/token-exchanges.ts). */
  exchangeLinks: ExchangeLinks;
  /** Whether a user exists and is enabled (token exchange acts only for such a user). */
  accountExists?: (accountId: string) => Promise<boolean>;
  /** Reports tokens larger than 4 KB (log + admin API). */
  tokenSize?: TokenSizeWatch;
  /** Middleware installed with `provider.use` (e.g. the device user-code throttle), in order. */
  use?: Middleware[];
  /** Keyward's edge middleware for the requests sent to the provider straight from the socket (http/app.ts); outermost. */
  edge?: (ctx: KoaContextWithOIDC, next: () => Promise<void>) => Promise<void>;
  /** Keyward's cache of Client objects (client-instances.ts); without it oidc-provider's own lookup. */
  clientInstances?: ClientInstances;
}

type Part = Partial<Configuration>;

/** Merges configuration parts; `features` is merged one level deeper so each part owns its features. */
export function mergeConfiguration(parts: Part[]): Configuration {
  const merged: Record<string, unknown> = {};
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if ((key === 'features' || key === 'ttl') && merged[key]) {
        merged[key] = { ...(merged[key]), ...(value as object) };
      } else {
        merged[key] = value;
      }
    }
  }
  return merged;
}

/** Assembles an oidc-provider instance from the configuration parts of each concern. */
export function createProvider(deps: ProviderDeps): Provider {
  // The client adapter needs the final scope list (see ClientAdapter), hence the late binding.
  let clientAdapter: ClientAdapter | undefined;
  let provider: Provider | undefined;
  const federationKey = deps.federation ? new InternalAssertionKey() : undefined;
  const configuration = mergeConfiguration([
    {
      adapter: (name: string) => {
        if (name === 'Client') return clientAdapter!;
        const stored = deps.adapter(name);
        if (name === 'ReplayDetection' && federationKey) return internalAssertionReplay(stored, federationKey);
        return name === 'PushedAuthorizationRequest' ? oneTimeRequestUri(stored) : singleUse(name, stored, () => provider!);
      },
      jwks: deps.jwks,
      cookies: { keys: deps.cookieKeys },
    },
    policyConfiguration(),
    clientConfiguration(),
    resourceConfiguration(deps),
    introspectionConfiguration(deps.clients),
    clientAssertionConfiguration(deps.now),
    refreshRotationConfiguration((ctx, resource, client) => resourceServerInfo(deps, ctx, resource, client)),
    claimsConfiguration({ clients: deps.clients, roles: deps.roles, ...(deps.userRoles ? { userRoles: deps.userRoles } : {}) }),
    deps.allowPrivateNetworks ? privateNetworkFetch() : {},
    deps.senderConstraints ? senderConstraintConfiguration(deps.senderConstraints) : {},
    ...(deps.extra ?? []),
  ]);
  clientAdapter = new ClientAdapter(deps.clients, oidcScopesOf(configuration), federationKey?.jwks);
  provider = new Provider(deps.issuer, configuration);
  // Behind a TLS-terminating load balancer the issuer is https while the socket is not.
  provider.proxy = (deps.proxyHops ?? 0) > 0;
  provider.maxIpsCount = deps.proxyHops ?? 0;
  if (deps.edge) provider.use(deps.edge);
  answerStoreOutage(provider, deps.onStoreOutage);
  const verifier = new AccessTokenVerifier(deps.issuer, deps.jwks.keys as JWK[], deps.now);
  registerTokenExchange(provider, {
    issuer: deps.issuer, verifier, revocations: deps.revocations, links: deps.exchangeLinks, clients: deps.clients,
    roles: deps.roles, resources: deps.resources, userRoles: deps.userRoles, accountExists: deps.accountExists, now: deps.now, audit: deps.audit,
  });
  if (deps.clientInstances) installClientFind(provider, deps.clientInstances.create());
  installOverrides(provider, {
    issuer: deps.issuer,
    pageHeaders: deps.pageHeaders,
    clients: deps.clients,
    ...(deps.federation && federationKey ? { federation: { auth: deps.federation, key: federationKey, ...(deps.audit ? { audit: deps.audit } : {}) } } : {}),
    jwtTokens: {
      verifier,
      revocations: deps.revocations,
      clients: deps.clients,
      ...(deps.audit ? { audit: deps.audit } : {}),
      revokedThroughChain: (token) => revokedThroughChain(deps.exchangeLinks, token, deps.now()),
    },
  });
  if (deps.tokenSize) installTokenSizeWatch(provider, deps.tokenSize);
  if (deps.audit) installTokenAudit(provider, deps.audit, deps.tokenFingerprint);
  if (deps.audit) installDeviceAudit(provider, deps.audit);
  for (const middleware of deps.use ?? []) provider.use(middleware);
  return provider;
}
