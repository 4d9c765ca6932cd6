import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Router from '@koa/router';
import type { Configuration } from 'oidc-provider';
import { AuditWriter } from './audit/writer.ts';
import type { Config } from './config/env.ts';
import { createHttpApp } from './http/app.ts';
import { healthRoutes } from './http/health.ts';
import { Metrics } from './http/metrics.ts';
import { bootstrapAdmin, type BootstrapResult } from './identity/bootstrap.ts';
import { ChangeFeed } from './identity/changes.ts';
import { ClientService } from './identity/clients.ts';
import { ResourceService } from './identity/resources.ts';
import { RoleService } from './identity/roles.ts';
import { SecretHasher } from './identity/secrets.ts';
import { deriveKey } from './keys/crypto.ts';
import { ensureInitialKeys } from './keys/initial.ts';
import { loadKek } from './keys/kek.ts';
import { providerJwks } from './keys/keyset.ts';
import { KeyStore } from './keys/store.ts';
import type { Logger } from './log/logger.ts';
import { purgeExpiredArtifacts } from './oidc/adapter.ts';
import { ProviderHolder } from './oidc/holder.ts';
import { createProvider } from './oidc/provider.ts';
import { migrate } from './store/migrate.ts';
import { openStore, type Store } from './store/store.ts';

export interface KeywardOptions {
  logger: Logger;
  now?: () => Date;
  /** An already open store (tests share one); otherwise opened from the config. */
  store?: Store;
}

/** Everything a running Keyward is made of; tests reach into it, main.ts only starts and stops it. */
export interface Keyward {
  config: Config;
  store: Store;
  clients: ClientService;
  roles: RoleService;
  resources: ResourceService;
  keys: KeyStore;
  changes: ChangeFeed;
  audit: AuditWriter;
  provider: ProviderHolder;
  bootstrap: BootstrapResult | undefined;
  /** Rebuilds the provider from the stored key set (hot reload). */
  reloadKeys(): Promise<void>;
  listen(): Promise<{ port: number; url: string }>;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), flushes, closes the store. */
  close(): Promise<void>;
}

const BOOTSTRAP_LOCK = 0x6b657762; // "kewb"
const PURGE_INTERVAL_MS = 10 * 60_000;

/** Composition root: config → store → services → keys → provider → http. */
export async function createKeyward(config: Config, options: KeywardOptions): Promise<Keyward> {
  const { logger } = options;
  const now = options.now ?? (() => new Date());
  const ownsStore = !options.store;
  const store = options.store ?? (await openStore({ databaseUrl: config.databaseUrl, dataDir: config.dataDir }));
  try {
    if (config.autoMigrate) {
      const applied = await migrate(store.sql);
      if (applied.length) logger.info({ migrations: applied }, 'migrations applied');
    }
    const kek = await loadKek(config.kek, config.kekFile);
    const changes = new ChangeFeed(store.kind === 'postgres' ? store.sql : undefined);
    await changes.start();
    const hasher = new SecretHasher(kek);
    const clients = new ClientService(store.prisma, hasher, changes, now);
    const roles = new RoleService(store.prisma, changes);
    const resources = new ResourceService(store.prisma, changes);
    const keys = new KeyStore(store.prisma, kek);
    const audit = new AuditWriter(store.prisma, logger, now);
    audit.start();

    const bootstrapped = await store.sql.withAdvisoryLock(BOOTSTRAP_LOCK, () =>
      bootstrapAdmin({ clients, roles, resources, prisma: store.prisma }, config.issuer, config.bootstrapAdmin));
    const bootstrap = bootstrapped.acquired ? bootstrapped.value : undefined;
    if (bootstrap?.created) audit.record({ type: 'client.bootstrap', subject: bootstrap.clientId, outcome: 'success' });

    await ensureInitialKeys(store.sql, keys, ['ES256', 'RS256'], now);
    const cookieKeys = [deriveKey(kek, 'cookies').toString('base64url')];
    const build = async () => createProvider({
      issuer: config.issuer, prisma: store.prisma, clients, roles, resources, now, cookieKeys,
      jwks: providerJwks(await keys.loadUsable()),
      extra: [] as Partial<Configuration>[],
    });
    const provider = new ProviderHolder(await build());
    const metrics = new Metrics();
    const routers: Router[] = [healthRoutes({ metrics, ping: () => store.ping(), keysLoaded: () => true })];
    const app = createHttpApp({ logger, metrics, provider, routers });

    const purge = setInterval(() => {
      purgeExpiredArtifacts(store.prisma, now()).catch((error: Error) => logger.warn({ err: error.message }, 'purge failed'));
    }, PURGE_INTERVAL_MS);
    purge.unref();

    let server: Server | undefined;
    return {
      config, store, clients, roles, resources, keys, changes, audit, provider, bootstrap,
      async reloadKeys() {
        provider.swap(await build());
      },
      async listen() {
        server = app.listen(config.port, config.host);
        await once(server, 'listening');
        const { port } = server.address() as AddressInfo;
        return { port, url: `http://127.0.0.1:${port}` };
      },
      async close() {
        clearInterval(purge);
        if (server) {
          const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
          server.closeIdleConnections();
          const timer = setTimeout(() => server!.closeAllConnections(), config.shutdownTimeoutMs);
          await closed;
          clearTimeout(timer);
        }
        await audit.stop();
        await changes.stop();
        if (ownsStore) await store.close();
      },
    };
  } catch (error) {
    if (ownsStore) await store.close().catch(() => undefined);
    throw error;
  }
}
