import { once } from 'node:events';
import type { Server } from 'node:http';
import type { AddressInfo } from 'node:net';
import type Router from '@koa/router';
import type Koa from 'koa';
import { Provider, type Configuration } from 'oidc-provider';
import { adminRouter } from './admin/router.ts';
import { AuditQuery } from './audit/query.ts';
import { startAuditRetention } from './audit/retention.ts';
import type { AuditWriter } from './audit/writer.ts';
import type { Config } from './config/env.ts';
import { createDomain, type Domain } from './domain.ts';
import { createHttpApp, type Edge } from './http/app.ts';
import { ClientCertificates } from './http/client-certificate.ts';
import { createListener } from './http/listener.ts';
import { clusterExposition } from './http/cluster.ts';
import { healthRoutes } from './http/health.ts';
import { Metrics, SecurityMetrics } from './http/metrics.ts';
import { oauthAnswer, type EdgeAnswer } from './http/poison.ts';
import { Problem, sendProblem } from './admin/problem.ts';
import { bootstrapAdmin, type BootstrapResult } from './identity/bootstrap.ts';
import type { ClientService } from './identity/clients/index.ts';
import { PasswordAuthenticator } from './identity/password-login.ts';
import type { ResourceService } from './identity/resources.ts';
import type { RoleService } from './identity/roles.ts';
import type { UserService } from './identity/users.ts';
import { hmacSha256 } from './keys/crypto.ts';
import { ensureInitialKeys } from './keys/initial.ts';
import { providerJwks } from './keys/keyset.ts';
import type { KeyStore } from './keys/store.ts';
import { KeySetFollower } from './keys/follower.ts';
import { jwksMaxAgeSeconds } from './keys/lifecycle.ts';
import { KeyScheduler, type Timers } from './keys/scheduler.ts';
import { KeyService } from './keys/service.ts';
import { discoveryCacheRoutes, jwksCacheRoutes } from './http/jwks-cache.ts';
import { errorFields, readRequestIdsFrom, requestIdOf, type Logger } from './log/logger.ts';
import { accountConfiguration } from './oidc/accounts.ts';
import { interactionConfiguration, providerPageHeaders, refusalPage } from './interaction/provider-pages.ts';
import { CsrfTokens } from './interaction/csrf.ts';
import { interactionRoutes } from './interaction/routes.ts';
import { LoginThrottle } from './interaction/throttle.ts';
import { deviceFlowConfiguration } from './interaction/device-pages.ts';
import { DEVICE_CODE_ATTEMPTS, deviceCodeThrottle } from './interaction/device-throttle.ts';
import { purgeRateLimits, SharedRateLimit } from './store/rate-limits.ts';
import { ClientInstances } from './oidc/client-instances.ts';
import { ProviderHolder } from './oidc/holder.ts';
import { createProvider } from './oidc/provider.ts';
import { devicePolling, deviceSessionRecovery } from './oidc/overrides/index.ts';
import type { ChangeFeed } from './store/changes.ts';
import { LoginThrottleCounters } from './store/login-throttles.ts';
import { migrate } from './store/migrate.ts';
import { oidcArtifactAdapters } from './store/oidc-adapters.ts';
import { purgeExpiredArtifacts } from './store/oidc-artifacts.ts';
import { OidcGrants } from './store/oidc-grants.ts';
import { purgeRevokedTokens, RevokedTokens } from './store/revoked-tokens.ts';
import { purgeTokenExchanges, TokenExchanges } from './store/token-exchanges.ts';
import { TokenSizeWatch } from './oidc/token-size.ts';
import { openStore, type Store } from './store/store.ts';

export interface KeywardOptions {
  logger: Logger;
  now?: () => Date;
  /** An already open store (tests share one); otherwise opened from the config. */
  store?: Store;
  /** What the key schedule sleeps with (tests step it with their clock); the system timers otherwise. */
  timers?: Timers;
  /** Runs the key schedule, purges and audit retention (default); off in all but one cluster worker (src/http/cluster.ts). */
  periodicJobs?: boolean;
  /** KEYWARD_WORKERS > 1: this worker's slot, sent as the Keyward-Worker response header. */
  workerId?: number | undefined;
}

/** Everything a running Keyward is made of; tests reach into it, main.ts only starts and stops it. */
export interface Keyward {
  config: Config;
  store: Store;
  clients: ClientService;
  roles: RoleService;
  resources: ResourceService;
  users: UserService;
  keys: KeyStore;
  changes: ChangeFeed;
  audit: AuditWriter;
  /** Reads the audit trail (the admin API's /audit). */
  auditTrail: AuditQuery;
  /** Revoked JWT access tokens: written by the token endpoints, read by every verifier. */
  revocations: RevokedTokens;
  provider: ProviderHolder;
  /** oidc-provider's Client objects, cached across requests and key rotations (tests read its stats). */
  clientInstances: ClientInstances;
  bootstrap: BootstrapResult | undefined;
  /** Signing keys for operators: list and (emergency) rotation. */
  keyService: KeyService;
  /** Performs scheduled key transitions (tests drive it with their clock via runDue()). */
  keyScheduler: KeyScheduler;
  /** Federated credentials and the federated_jwt authentication (workload identity federation). */
  federation: Domain['federation'];
  /** Rebuilds the provider from the stored key set (hot reload). */
  reloadKeys(): Promise<void>;
  listen(): Promise<{ port: number; url: string }>;
  /** Stops accepting, lets in-flight requests finish (up to the shutdown timeout), flushes, closes the store. */
  close(): Promise<void>;
}

const BOOTSTRAP_LOCK = 0x6b657762; // "kewb"
const PURGE_INTERVAL_MS = 10 * 60_000;
const PURGE_LOCK = 0x6b657770; // "kewp"

/** Composition root: config → store → services → keys → provider → http. */
export async function createKeyward(config: Config, options: KeywardOptions): Promise<Keyward> {
  const { logger } = options;
  const now = options.now ?? (() => new Date());
  const ownsStore = !options.store;
  const store = options.store ?? (await openStore({
    databaseUrl: config.databaseUrl, dataDir: config.dataDir, logger, maxConnections: config.db.poolSize,
    connectTimeoutMs: config.db.connectTimeoutMs, statementTimeoutMs: config.db.statementTimeoutMs,
  }));
  const onStoreOutage = () => store.countError('request');
  // Started below; released again when start-up fails (a held LISTEN connection would keep
  // the PostgreSQL pool, and so the process, from ever ending).
  let startedFeed: ChangeFeed | undefined;
  let startedAudit: AuditWriter | undefined;
  try {
    if (config.autoMigrate) {
      const applied = await migrate(store.sql);
      if (applied.length) logger.info({ migrations: applied }, 'migrations applied');
    }
    const domain = await createDomain(config, store, logger, now, { rekey: true });
    const { secrets, rekeyed, changes, clients, roles, resources, users, keys, audit, keySettings, jwksConsumers, federation } = domain;
    await changes.start();
    startedFeed = changes;
    audit.start();
    startedAudit = audit;
    // A wrong KEK must stop start-up before anything is written under it (bootstrap would
    // otherwise re-hash the admin secret with a pepper derived from the wrong key).
    await keys.loadUsable();
    if (rekeyed.signingKeys.rekeyed || rekeyed.instanceSecrets.rekeyed) {
      logger.info({ signingKeys: rekeyed.signingKeys.rekeyed, instanceSecrets: rekeyed.instanceSecrets.rekeyed },
        'KEK rotation: re-encrypted under the current KEK what only KEYWARD_KEK_PREVIOUS opened');
    }

    const bootstrapped = await store.sql.withAdvisoryLock(BOOTSTRAP_LOCK, () =>
      bootstrapAdmin({ clients, roles, resources, prisma: store.prisma }, config.issuer, config.bootstrapAdmin));
    const bootstrap = bootstrapped.acquired ? bootstrapped.value : undefined;
    if (bootstrap?.created) audit.record({ type: 'client.bootstrap', subject: bootstrap.clientId, outcome: 'success' });

    await ensureInitialKeys(store.sql, keys, config.signingAlgs, now, audit, logger);
    // Read before the first build: a change racing it is then seen as a difference and reloaded.
    const loadedKeys = await keys.fingerprint();
    const cookieKeys = [secrets.cookies.toString('base64url')];
    const tokenAuditKey = secrets['audit-token'];
    // One list for the token endpoints (which add to it) and the admin API's verifier (which reads it).
    const revocations = new RevokedTokens(store.prisma, store.sql);
    const auditTrail = new AuditQuery(store.prisma);
    const adapter = oidcArtifactAdapters(store.prisma, now);
    const certificates = new ClientCertificates({ header: config.clientCertHeader, proxyHops: config.proxyHops, clientCa: config.clientCa, now });
    if (certificates.headerIgnored) logger.warn('KEYWARD_CLIENT_CERT_HEADER is ignored: it is trusted only behind a proxy (set KEYWARD_PROXY_HOPS)');
    const senderConstraints = { clientCertificate: certificates.of, dpopNonceSecret: secrets['dpop-nonce'], dpopRequireNonce: config.dpopRequireNonce };
    const exchangeLinks = new TokenExchanges(store.prisma);
    const tokenSize = new TokenSizeWatch((fields, message) => logger.warn(fields, message), now);
    // RFC 8628 §5.1: user-code entry counted per source in the store, shared by every instance.
    const deviceThrottle = deviceCodeThrottle(new SharedRateLimit(store.prisma, { prefix: 'device-code', ...DEVICE_CODE_ATTEMPTS }), audit);
    // RFC 8628 §3.5: one token request per interval and device code, across instances.
    const devicePoll = devicePolling(new SharedRateLimit(store.prisma, { prefix: 'device-poll', points: 1, durationMs: config.devicePollIntervalMs }),
      config.devicePollIntervalMs / 1000);
    // Keyward's edge inside the provider, for the token endpoints (http/app.ts); bound once the http app exists.
    let providerEdge: Edge = (_ctx, next) => next();
    // oidc-provider's Client objects, kept across requests and key rotations (client-instances.ts).
    const clientInstances = new ClientInstances((listener) => changes.subscribe((change) => {
      if (change.kind === 'client') listener(change.id);
    }), { max: config.clientCacheSize });
    const build = async () => {
      const jwks = providerJwks(await keys.loadUsable());
      const built = createProvider({
        issuer: config.issuer, proxyHops: config.proxyHops, adapter, revocations, clients, roles, resources, now, cookieKeys, jwks,
        userRoles: (userId) => users.rolesOf(userId),
        exchangeLinks, tokenSize, accountExists: async (userId) => (await users.account(userId)) !== undefined,
        allowPrivateNetworks: config.allowPrivateJwksUri,
        pageHeaders: providerPageHeaders,
        extra: [accountConfiguration({
          account: (id) => users.account(id),
          // Roles per API: ID tokens and userinfo carry the global roles only.
          rolesOf: async (id) => roles.rolesFor(await users.rolesOf(id), undefined),
        }), interactionConfiguration(),
        deviceFlowConfiguration({ audit, codeTtlSeconds: Math.round(config.deviceCodeTtlMs / 1000) })] as Partial<Configuration>[],
        use: [deviceSessionRecovery(), deviceThrottle, devicePoll],
        audit, onStoreOutage, federation: federation.authenticator,
        clientInstances, edge: (ctx, next) => providerEdge(ctx as unknown as Koa.Context, next),
        tokenFingerprint: (value) => hmacSha256(tokenAuditKey, value).toString('base64url'),
        senderConstraints,
      });
      return { built, jwks };
    };
    const first = await build();
    const provider = new ProviderHolder(first.built, first.jwks);
    const keyFollower = new KeySetFollower({
      keys, changes, logger,
      rebuild: async () => {
        const next = await build();
        // The new instance takes requests with the clients the old one served ready (no cold start).
        await clientInstances.warm((clientId) => next.built.Client.find(clientId));
        provider.swap(next.built, next.jwks);
      },
    });
    keyFollower.start(loadedKeys);
    jwksConsumers.start();
    const keyScheduler = new KeyScheduler({
      sql: store.sql, keys, audit, logger, now, settings: keySettings, ...(options.timers ? { timers: options.timers } : {}),
      ...(config.keyRotationWaitForConsumers ? { waitForConsumers: { consumers: jwksConsumers, maxDelayMs: config.keyRotationMaxDelayMs } } : {}),
      changed: async () => {
        await keyFollower.reload();
        await changes.publish({ kind: 'keys' });
      },
    });
    const periodicJobs = options.periodicJobs ?? true;
    if (periodicJobs) keyScheduler.start();
    const keyService = new KeyService({ keys, scheduler: keyScheduler, settings: keySettings, now, consumers: jwksConsumers });
    const metrics = new Metrics();
    metrics.observeStore(store, {
      now,
      activeKeys: async () => (await keyService.list()).filter((key) => key.state === 'active').map((key) => ({
        alg: key.alg,
        activatedAt: new Date(key.activated_at ?? key.created_at),
        nextRotationAt: key.next_transition_at ? new Date(key.next_transition_at) : undefined,
      })),
    });
    const routers: Router[] = [healthRoutes({
      metrics, ping: () => store.ping(), signingAlgs: config.signingAlgs, activeAlgs: () => provider.signingAlgs,
      metricsToken: config.metricsToken,
      exposition: options.workerId === undefined ? undefined : clusterExposition(metrics.registry),
    })];
    routers.push(jwksCacheRoutes(jwksMaxAgeSeconds(config.keyRotationIntervalMs), (ctx) => jwksConsumers.record(ctx.ip, ctx.get('user-agent'))), discoveryCacheRoutes());
    const throttle = new LoginThrottle(new LoginThrottleCounters(store.prisma), now);
    routers.push(interactionRoutes({
      provider, clients, resources, users, grants: new OidcGrants(store.prisma), audit, now,
      csrf: new CsrfTokens(secrets['interaction-csrf']),
      throttle,
      authenticator: new PasswordAuthenticator(users, logger),
    }));
    routers.push(adminRouter({
      issuer: config.issuer, clients, users, roles, resources, keyService, keys, provider, changes, revocations, audit,
      auditTrail, logger, now, onStoreOutage, federation, clientCertificate: certificates.of, tokenSize,
    }));
    const security = new SecurityMetrics(metrics.registry, {
      audit: () => audit.stats(),
      caches: { clients: () => clients.cacheStats(), client_instances: () => clientInstances.stats(), resources: () => resources.cacheStats(), user_roles: () => users.cacheStats() },
    });
    audit.observe((event) => security.audited(event));
    // A refusal at the edge speaks the format of the endpoint it was sent to.
    const answer: EdgeAnswer = (ctx, r) => {
      if (r.kind === 'admin') return sendProblem(ctx, new Problem(r.status, r.description, r.field ? [{ field: r.field, message: r.description }] : undefined, r.headers));
      if (r.kind === 'page') return refusalPage(ctx, r.status, r.error, r.description, r.headers);
      return oauthAnswer(ctx, r.status, r.error, r.description, r.headers);
    };
    // Every line logged while oidc-provider serves a request names the request (log/logger.ts).
    readRequestIdsFrom(() => requestIdOf(Provider.ctx));
    const http = createHttpApp({
      issuer: config.issuer, logger, metrics, security, provider, routers, proxyHops: config.proxyHops, rateLimits: config.rateLimits, answer, onStoreOutage,
    });
    providerEdge = http.providerEdge;
    const stopAuditRetention = periodicJobs
      ? startAuditRetention({ prisma: store.prisma, logger, now, retentionMs: config.auditRetentionMs })
      : async () => undefined;

    // Once at start and then periodically, by one instance at a time (the others skip that run;
    // the deletes are idempotent anyway).
    let purging: Promise<unknown> = Promise.resolve();
    const runPurge = () => {
      purging = store.sql.withAdvisoryLock(PURGE_LOCK, () => Promise.all([
        purgeExpiredArtifacts(store.prisma, now()).catch((error: unknown) => logger.warn({ err: errorFields(error) }, 'purge failed')),
        purgeRevokedTokens(store.prisma, now()).catch((error: unknown) => logger.warn({ err: errorFields(error) }, 'revoked-token purge failed')),
        purgeTokenExchanges(store.prisma, now()).catch((error: unknown) => logger.warn({ err: errorFields(error) }, 'token-exchange purge failed')),
        throttle.purge().catch((error: unknown) => logger.warn({ err: errorFields(error) }, 'login-throttle purge failed')),
        purgeRateLimits(store.prisma, now()).catch((error: unknown) => logger.warn({ err: errorFields(error) }, 'rate-limit purge failed')),
      ]), { wait: false }).catch((error: unknown) => logger.warn({ err: errorFields(error) }, 'purge failed'));
    };
    const purge = setInterval(runPurge, PURGE_INTERVAL_MS);
    purge.unref();
    if (periodicJobs) runPurge();
    else clearInterval(purge);

    let server: Server | undefined;
    return {
      config, store, clients, roles, resources, users, keys, changes, audit, auditTrail, revocations, provider, clientInstances, bootstrap, keyService, keyScheduler, federation,
      reloadKeys: () => keyFollower.reload(),
      async listen() {
        server = createListener(http.handler, config.tls).listen(config.port, config.host);
        const workerId = options.workerId;
        // Set before the app runs, so every answer names the worker that gave it.
        if (workerId !== undefined) server.prependListener('request', (_req, res: import('node:http').ServerResponse) => res.setHeader('Keyward-Worker', String(workerId)));
        await once(server, 'listening');
        const { port } = server.address() as AddressInfo;
        return { port, url: `${config.tls ? 'https' : 'http'}://127.0.0.1:${port}` };
      },
      async close() {
        clearInterval(purge);
        await purging;
        await stopAuditRetention();
        if (server) {
          const closed = new Promise<void>((resolve) => server!.close(() => resolve()));
          // Requests still arriving on open keep-alive connections are served, but told the
          // connection ends; a connection whose response is sent is closed within 100 ms
          // instead of lingering for its keep-alive timeout.
          server.on('request', (_req, res: import('node:http').ServerResponse) => res.setHeader('Connection', 'close'));
          server.closeIdleConnections();
          const sweep = setInterval(() => server!.closeIdleConnections(), 100);
          const timer = setTimeout(() => server!.closeAllConnections(), config.shutdownTimeoutMs);
          await closed;
          clearInterval(sweep);
          clearTimeout(timer);
        }
        await keyScheduler.stop();
        await keyFollower.stop();
        await jwksConsumers.stop();
        await audit.stop();
        await changes.stop();
        if (ownsStore) await store.close();
      },
    };
  } catch (error) {
    await startedAudit?.stop().catch(() => undefined);
    await startedFeed?.stop().catch(() => undefined);
    if (ownsStore) await store.close().catch(() => undefined);
    throw error;
  }
}
