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
import { installClientFind, installOverrides, oneTimeRequestUri, privateNetworkFetch, type PageHeaders } from './overrides/index.ts';
import { policyConfiguration } from './policy.ts';
import { refreshRotationConfiguration } from './refresh-rotation.ts';
import { resourceConfiguration, resourceServerInfo } from './resources.ts';
import { singleUse, type ArtifactAdapter } from './single-use.ts';
import { answerStoreOutage } from './store-outage.ts';
import { introspectionConfiguration } from './token-visibility.ts';
import { installTokenAudit, type AuditSink, type TokenFingerprint } from './token-audit.ts';

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
  const configuration = mergeConfiguration([
    {
      adapter: (name: string) => {
        if (name === 'Client') return clientAdapter!;
        const stored = deps.adapter(name);
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
    claimsConfiguration({ clients: deps.clients, ...(deps.userRoles ? { userRoles: deps.userRoles } : {}) }),
    deps.allowPrivateNetworks ? privateNetworkFetch() : {},
    ...(deps.extra ?? []),
  ]);
  clientAdapter = new ClientAdapter(deps.clients, oidcScopesOf(configuration));
  provider = new Provider(deps.issuer, configuration);
  // Behind a TLS-terminating load balancer the issuer is https while the socket is not.
  provider.proxy = (deps.proxyHops ?? 0) > 0;
  provider.maxIpsCount = deps.proxyHops ?? 0;
  if (deps.edge) provider.use(deps.edge);
  answerStoreOutage(provider, deps.onStoreOutage);
  if (deps.clientInstances) installClientFind(provider, deps.clientInstances.create());
  installOverrides(provider, {
    issuer: deps.issuer,
    pageHeaders: deps.pageHeaders,
    clients: deps.clients,
    jwtTokens: {
      verifier: new AccessTokenVerifier(deps.issuer, deps.jwks.keys as JWK[], deps.now),
      revocations: deps.revocations,
      clients: deps.clients,
      ...(deps.audit ? { audit: deps.audit } : {}),
    },
  });
  if (deps.audit) installTokenAudit(provider, deps.audit, deps.tokenFingerprint);
  return provider;
}
