import Router from '@koa/router';
import type Koa from 'koa';
import type { AuditQuery } from '../audit/query.ts';
import type { AuditWriter } from '../audit/writer.ts';
import type { ResourceService } from '../identity/resources.ts';
import type { RoleService } from '../identity/roles.ts';
import type { UserService } from '../identity/users.ts';
import { requestFields, type Logger } from '../log/logger.ts';
import type { TokenSizeWatch } from '../oidc/token-size.ts';
import { AdminAuthenticator, type AdminAuthDeps } from './auth.ts';
import { openApiDocument } from './openapi.ts';
import { Problem, sendProblem, toProblem } from './problem.ts';
import { koaPath, pathMatcher, type AdminRoute } from './route.ts';
import { clientRoutes } from './routes/clients.ts';
import { federationRoutes, type AdminFederation } from './routes/federation.ts';
import { resourceRoutes, roleRoutes, userRoutes } from './routes/identity.ts';
import { auditRoutes, keyRoutes, type AdminKeyService } from './routes/operations.ts';
import { clientCreated, clientRead, clientView, secretRotated } from './schemas/clients.ts';
import { federatedCredentialView } from './schemas/federation.ts';
import { auditView, keyView, resourceView, roleView, userView } from './schemas/identity.ts';

export const ADMIN_PREFIX = '/admin/v1';

export interface AdminDeps extends AdminAuthDeps {
  users: UserService;
  roles: RoleService;
  resources: ResourceService;
  keyService: AdminKeyService;
  audit: AuditWriter;
  auditTrail: Pick<AuditQuery, 'find'>;
  logger: Logger;
  /** Workload identity federation: federated credentials and their dry run. */
  federation?: AdminFederation;
  /** The latest oversized token per client (GET /clients/{id} `token_size_warning`). */
  tokenSize?: Pick<TokenSizeWatch, 'forClient'>;
  /** Called for each request answered 503 because the store was unreachable (metrics). */
  onStoreOutage?: () => void;
}

/** Every operation of the admin API; the router and the OpenAPI document are both made from it. */
export function adminRouteTable(deps: AdminDeps): AdminRoute[] {
  return [
    ...clientRoutes(deps.clients, deps.tokenSize),
    ...(deps.federation ? federationRoutes(deps.federation) : []),
    ...userRoutes(deps.users),
    ...roleRoutes(deps.roles),
    ...resourceRoutes(deps.resources, deps.issuer),
    ...keyRoutes(deps.keyService),
    ...auditRoutes(deps.auditTrail),
  ];
}

/** Error messages of the store may quote the values they were given (hashes included): log the first line only. */
function safeError(error: unknown): { name: string; code?: string; message: string } {
  const e = error as { name?: string; code?: unknown; message?: string };
  return {
    name: e.name ?? 'Error',
    ...(typeof e.code === 'string' ? { code: e.code } : {}),
    message: (e.message ?? '').split('\n')[0]!.slice(0, 200),
  };
}

/** `/admin/v1`: authenticated, validated, audited; every failure is problem+json. */
export function adminRouter(deps: AdminDeps): Router {
  const routes = adminRouteTable(deps);
  const auth = new AdminAuthenticator(deps);
  const router = new Router();
  // Built on the first request for it, not at start (~0.1 s of schema conversion).
  let document: object | undefined;
  const describe = () => openApiDocument(deps.issuer, routes, [
    [clientView, 'Client'], [clientRead, 'ClientRead'], [clientCreated, 'ClientCreated'], [secretRotated, 'SecretRotated'], [userView, 'User'],
    [roleView, 'Role'], [resourceView, 'ResourceServer'], [keyView, 'SigningKey'], [auditView, 'AuditEvent'],
    [federatedCredentialView, 'FederatedCredential'],
  ]);

  const fail = (ctx: Koa.Context, error: unknown) => {
    const problem = toProblem(error);
    if (problem?.status === 503) deps.onStoreOutage?.();
    if (problem) return sendProblem(ctx, problem);
    deps.logger.error({ err: safeError(error), path: ctx.path, method: ctx.method, ...requestFields(ctx) }, 'admin request failed');
    sendProblem(ctx, new Problem(500, 'an unexpected error occurred; it has been logged'));
  };

  router.get(`${ADMIN_PREFIX}/openapi.json`, (ctx) => {
    ctx.set('Cache-Control', 'no-cache');
    document ??= describe();
    ctx.body = document;
  });
  for (const route of routes) {
    router.register(`${ADMIN_PREFIX}${koaPath(route.path)}`, [route.method.toUpperCase()], async (ctx) => {
      try {
        const principal = await auth.authenticate(ctx, route.method !== 'get');
        await route.run(ctx, principal, deps.audit);
      } catch (error) {
        fail(ctx, error);
      }
    }, { name: route.operationId });
  }

  // Anything else under the prefix: a problem, not oidc-provider's HTML 404.
  const matchers = routes.map((route) => ({ route, pattern: pathMatcher(ADMIN_PREFIX, route.path) }));
  router.all(`${ADMIN_PREFIX}/{*rest}`, (ctx) => {
    const allowed = matchers.filter((m) => m.pattern.test(ctx.path)).map((m) => m.route.method.toUpperCase());
    if (allowed.length) {
      fail(ctx, new Problem(405, `${ctx.method} is not allowed here; use ${allowed.join(', ')}`, undefined, { Allow: allowed.join(', ') }));
    } else {
      fail(ctx, new Problem(404, `no admin API operation at ${ctx.path}`));
    }
  });
  return router;
}
