import { userInfo } from 'node:os';
import { AuditWriter } from '../audit/writer.ts';
import type { Config } from '../config/env.ts';
import { ChangeFeed } from '../identity/changes.ts';
import { ClientService } from '../identity/clients.ts';
import { ResourceService } from '../identity/resources.ts';
import { RoleService } from '../identity/roles.ts';
import { SecretHasher } from '../identity/secrets.ts';
import { UserService } from '../identity/users.ts';
import { loadKek } from '../keys/kek.ts';
import { lifecycleSettings } from '../keys/lifecycle.ts';
import { KeyScheduler } from '../keys/scheduler.ts';
import { KeyService } from '../keys/service.ts';
import { KeyStore } from '../keys/store.ts';
import { longestTokenTtlSeconds } from '../keys/token-ttl.ts';
import type { Logger } from '../log/logger.ts';
import type { Store } from '../store/store.ts';

/** The domain services the CLI works on: the same classes the server uses, without HTTP. */
export interface Services {
  store: Store;
  clients: ClientService;
  users: UserService;
  roles: RoleService;
  resources: ResourceService;
  keyService: KeyService;
  audit: AuditWriter;
  /** Who the audit trail names for changes made here. */
  actor: string;
  /** Writes the buffered audit events; the store stays open (its owner closes it). */
  close(): Promise<void>;
}

export async function createServices(config: Config, store: Store, logger: Logger, now: () => Date = () => new Date()): Promise<Services> {
  const kek = await loadKek(config.kek, config.kekFile);
  // Publishing only: running servers on the same PostgreSQL drop their caches through NOTIFY.
  const changes = new ChangeFeed(store.kind === 'postgres' ? store.sql : undefined);
  const keys = new KeyStore(store.prisma, kek);
  const audit = new AuditWriter(store.sql, logger, now);
  const settings = async () => lifecycleSettings({
    rotationIntervalMs: config.keyRotationIntervalMs,
    longestTokenTtlSeconds: await longestTokenTtlSeconds(store.prisma),
    algs: config.signingAlgs,
  });
  // Never started: the CLI performs the transitions it is asked for and nothing on a timer.
  const scheduler = new KeyScheduler({
    sql: store.sql, keys, audit, logger, now, settings,
    changed: () => changes.publish({ kind: 'keys' }),
  });
  return {
    store,
    clients: new ClientService(store.prisma, new SecretHasher(kek), changes, now),
    users: new UserService(store.prisma, changes),
    roles: new RoleService(store.prisma, changes),
    resources: new ResourceService(store.prisma, changes),
    keyService: new KeyService({ keys, scheduler, settings, now }),
    audit,
    actor: `cli:${safeUsername()}`,
    async close() {
      await scheduler.stop();
      await audit.stop();
    },
  };
}

function safeUsername(): string {
  try {
    return userInfo().username;
  } catch {
    return 'unknown';
  }
}
