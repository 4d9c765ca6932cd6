import { AuditWriter } from './audit/writer.ts';
import type { Config } from './config/env.ts';
import { ClientService } from './identity/clients/index.ts';
import { FederatedAuthenticator, FederatedCredentialService, FederatedTokenVerifier, IssuerKeys } from './identity/federation/index.ts';
import { ResourceService } from './identity/resources.ts';
import { RoleService } from './identity/roles.ts';
import { SecretHasher } from './identity/secrets.ts';
import { UserService } from './identity/users.ts';
import { JwksConsumers } from './keys/consumers.ts';
import { prepareSealed, type InstanceSecrets, type KekRing, type RekeyCounts } from './keys/instance-secrets.ts';
import { loadKek } from './keys/kek.ts';
import { lifecycleSettings, type LifecycleSettings } from './keys/lifecycle.ts';
import { KeyStore } from './keys/store.ts';
import { longestTokenTtlSeconds } from './keys/token-ttl.ts';
import type { Logger } from './log/logger.ts';
import { ChangeFeed } from './store/changes.ts';
import { FederationJtis } from './store/federation-jti.ts';
import type { Store } from './store/store.ts';

/** The domain services on one store, built the same way for the server and the CLI. */
export interface Domain {
  kek: KekRing;
  /** Client-secret pepper, cookie, audit and CSRF keys: stored sealed under the KEK, not derived from it. */
  secrets: InstanceSecrets;
  /** What start-up found and re-encrypted (zeros for `rekey: false` except `created`). */
  rekeyed: RekeyCounts;
  /** Re-encrypts under the current KEK whatever only the previous one opens (`keys rekey`). */
  rekey: () => Promise<RekeyCounts>;
  changes: ChangeFeed;
  clients: ClientService;
  roles: RoleService;
  resources: ResourceService;
  users: UserService;
  keys: KeyStore;
  audit: AuditWriter;
  /** Who fetches the JWKS (rotation readiness); the server records and starts it, the CLI only reads. */
  jwksConsumers: JwksConsumers;
  /** Federated credentials (workload identity federation) and the federated_jwt authentication over them. */
  federation: { credentials: FederatedCredentialService; authenticator: FederatedAuthenticator; issuerKeys: IssuerKeys };
  /** Key-lifecycle settings; read on demand because token TTLs live in the store. */
  keySettings: () => Promise<LifecycleSettings>;
}

/**
 * Builds the graph without starting anything (no timers, no LISTEN). Checks first that the KEK
 * opens every stored ciphertext (a one-line KekMismatchError otherwise) and, with `rekey` (the
 * server), re-encrypts under it what only KEYWARD_KEK_PREVIOUS opens.
 */
export async function createDomain(config: Config, store: Store, logger: Logger, now: () => Date, options: { rekey?: boolean } = {}): Promise<Domain> {
  const kek: KekRing = {
    current: await loadKek(config.kek, config.kekFile),
    currentName: config.kekNames.current,
    previous: config.kekPrevious,
    previousName: config.kekNames.previous,
  };
  const { secrets, counts: rekeyed } = await prepareSealed(store.sql, kek, { rekey: options.rekey ?? false });
  const changes = new ChangeFeed(store.kind === 'postgres' ? store.sql : undefined, { logger, maxStalenessMs: config.cacheMaxStalenessMs });
  const clients = new ClientService(store.prisma, new SecretHasher(secrets['client-secret-pepper']), changes, now, { allowPrivateJwksUri: config.allowPrivateJwksUri, cacheSize: config.clientCacheSize });
  return {
    kek,
    secrets,
    rekeyed,
    rekey: async () => (await prepareSealed(store.sql, kek, { rekey: true })).counts,
    changes,
    clients,
    federation: federationOf(config, store, changes, clients, now),
    roles: new RoleService(store.prisma, changes),
    resources: new ResourceService(store.prisma, changes),
    users: new UserService(store.prisma, changes),
    keys: new KeyStore(store.prisma, kek),
    audit: new AuditWriter(store.sql, logger, now, { maxBuffered: config.auditBufferMax, logLevel: config.auditLogLevel }),
    jwksConsumers: new JwksConsumers({ sql: store.sql, logger, now }),
    keySettings: async () => lifecycleSettings({
      rotationIntervalMs: config.keyRotationIntervalMs,
      longestTokenTtlSeconds: await longestTokenTtlSeconds(store.prisma),
      algs: config.signingAlgs,
    }),
  };
}

function federationOf(config: Config, store: Store, changes: ChangeFeed, clients: ClientService, now: () => Date): Domain['federation'] {
  const credentials = new FederatedCredentialService(store.prisma, changes);
  const issuerKeys = new IssuerKeys({ now: () => now().getTime() });
  const verifier = new FederatedTokenVerifier({ issuer: config.issuer, maxTokenAgeMs: config.federationMaxTokenAgeMs, now, keys: issuerKeys });
  return { credentials, issuerKeys, authenticator: new FederatedAuthenticator(clients, credentials, verifier, new FederationJtis(store.prisma, now)) };
}
