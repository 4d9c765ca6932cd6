import Provider, { type Configuration, type JWKS } from 'oidc-provider';
import type { ClientService } from '../identity/clients.ts';
import type { ResourceService } from '../identity/resources.ts';
import type { RoleService } from '../identity/roles.ts';
import type { PrismaClient } from '../store/store.ts';
import { PrismaAdapter } from './adapter.ts';
import { claimsConfiguration, type ClaimDeps } from './claims.ts';
import { ClientAdapter, clientConfiguration, installSecretVerification } from './clients.ts';
import { policyConfiguration } from './policy.ts';
import { resourceConfiguration } from './resources.ts';

export interface ProviderDeps {
  issuer: string;
  prisma: PrismaClient;
  clients: ClientService;
  roles: RoleService;
  resources: ResourceService;
  /** Private JWKs in signing preference order (see keys/keyset.ts). */
  jwks: JWKS;
  /** Secrets for signing cookies, shared by every instance. */
  cookieKeys: string[];
  now: () => Date;
  userRoles?: ClaimDeps['userRoles'];
  /** Further configuration parts (interactions, accounts, ...) owned by other modules. */
  extra?: Partial<Configuration>[];
}

type Part = Partial<Configuration>;

/** Merges configuration parts; `features` is merged one level deeper so each part owns its features. */
export function mergeConfiguration(parts: Part[]): Configuration {
  const merged: Record<string, unknown> = {};
  for (const part of parts) {
    for (const [key, value] of Object.entries(part)) {
      if ((key === 'features' || key === 'ttl') && merged[key]) {
        merged[key] = { ...(merged[key] as object), ...(value as object) };
      } else {
        merged[key] = value;
      }
    }
  }
  return merged as Configuration;
}

/** Assembles an oidc-provider instance from the configuration parts of each concern. */
export function createProvider(deps: ProviderDeps): Provider {
  const clientAdapter = new ClientAdapter(deps.clients);
  const configuration = mergeConfiguration([
    {
      adapter: (name: string) => (name === 'Client' ? clientAdapter : new PrismaAdapter(deps.prisma, name, deps.now)),
      jwks: deps.jwks,
      cookies: { keys: deps.cookieKeys },
    },
    policyConfiguration(),
    clientConfiguration(),
    resourceConfiguration(deps),
    claimsConfiguration({ clients: deps.clients, ...(deps.userRoles ? { userRoles: deps.userRoles } : {}) }),
    ...(deps.extra ?? []),
  ]);
  const provider = new Provider(deps.issuer, configuration);
  // Behind a TLS-terminating load balancer the issuer is https while the socket is not.
  provider.proxy = true;
  installSecretVerification(provider, deps.clients);
  return provider;
}
