import { userInfo } from 'node:os';
import type { AuditWriter } from '../audit/writer.ts';
import type { Config } from '../config/env.ts';
import { createDomain, type Domain } from '../domain.ts';
import type { ClientService } from '../identity/clients/index.ts';
import type { ResourceService } from '../identity/resources.ts';
import type { RoleService } from '../identity/roles.ts';
import type { UserService } from '../identity/users.ts';
import { KeyScheduler } from '../keys/scheduler.ts';
import type { RekeyCounts } from '../keys/instance-secrets.ts';
import { KeyService } from '../keys/service.ts';
import type { KeyStore } from '../keys/store.ts';
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
  /** The signing keys as stored (public parts; `keys export`). */
  keys: KeyStore;
  audit: AuditWriter;
  /** Re-encrypts under the current KEK what only the previous one opens; returns the counts. */
  rekey: () => Promise<RekeyCounts>;
  /** Federated credentials and their dry run. */
  federation: Domain['federation'];
  /** Who the audit trail names for changes made here. */
  actor: string;
  /** Writes the buffered audit events; the store stays open (its owner closes it). */
  close(): Promise<void>;
}

export async function createServices(config: Config, store: Store, logger: Logger, now: () => Date = () => new Date()): Promise<Services> {
  // Changes are only published: running servers on the same PostgreSQL drop their caches through NOTIFY.
  const { changes, clients, users, roles, resources, keys, audit, keySettings: settings, jwksConsumers, rekey, federation } = await createDomain(config, store, logger, now);
  // Never started: the CLI performs the transitions it is asked for and nothing on a timer.
  const scheduler = new KeyScheduler({
    sql: store.sql, keys, audit, logger, now, settings,
    changed: () => changes.publish({ kind: 'keys' }),
  });
  return {
    store, clients, users, roles, resources, audit, keys, rekey, federation,
    keyService: new KeyService({ keys, scheduler, settings, now, consumers: jwksConsumers }),
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
