import { AuditWriter } from './audit/writer.ts';
import type { Config } from './config/env.ts';
import { ClientService } from './identity/clients/index.ts';
import { ResourceService } from './identity/resources.ts';
import { RoleService } from './identity/roles.ts';
import { SecretHasher } from './identity/secrets.ts';
import { UserService } from './identity/users.ts';
import { JwksConsumers } from './keys/consumers.ts';
import { loadKek } from './keys/kek.ts';
import { lifecycleSettings, type LifecycleSettings } from './keys/lifecycle.ts';
import { KeyStore } from './keys/store.ts';
import { longestTokenTtlSeconds } from './keys/token-ttl.ts';
import type { Logger } from './log/logger.ts';
import { ChangeFeed } from './store/changes.ts';
import type { Store } from './store/store.ts';

/** The domain services on one store, built the same way for the server and the CLI. */
export interface Domain {
  kek: Buffer;
  changes: ChangeFeed;
  clients: ClientService;
  roles: RoleService;
  resources: ResourceService;
  users: UserService;
  keys: KeyStore;
  audit: AuditWriter;
  /** Who fetches the JWKS (rotation readiness); the server records and starts it, the CLI only reads. */
  jwksConsumers: JwksConsumers;
  /** Key-lifecycle settings; read on demand because token TTLs live in the store. */
  keySettings: () => Promise<LifecycleSettings>;
}

/** Builds the graph without starting anything (no timers, no LISTEN). */
export async function createDomain(config: Config, store: Store, logger: Logger, now: () => Date): Promise<Domain> {
  const kek = await loadKek(config.kek, config.kekFile);
  const changes = new ChangeFeed(store.kind === 'postgres' ? store.sql : undefined, { logger, maxStalenessMs: config.cacheMaxStalenessMs });
  return {
    kek,
    changes,
    clients: new ClientService(store.prisma, new SecretHasher(kek), changes, now, { allowPrivateJwksUri: config.allowPrivateJwksUri }),
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
