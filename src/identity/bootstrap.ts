import { ADMIN_READ_ROLE, ADMIN_ROLE, adminAudience } from './admin-roles.ts';
import type { ClientService } from './clients/index.ts';
import type { ResourceService } from './resources.ts';
import type { RoleService } from './roles.ts';

export interface BootstrapResult {
  clientId: string;
  /** Set only when the secret was generated here and must be shown once. */
  generatedSecret?: string;
  created: boolean;
}

/**
 * Seeds what the admin API needs: the admin roles, the admin API as a resource server, and
 * (when none exists) an admin client. With an id and secret from the environment this is
 * idempotent on every start and the environment's secret wins.
 */
export async function bootstrapAdmin(
  deps: { clients: ClientService; roles: RoleService; resources: ResourceService; prisma: import('../store/store.ts').PrismaClient },
  issuer: string,
  fromEnv: { clientId: string | undefined; clientSecret: string | undefined },
): Promise<BootstrapResult | undefined> {
  await deps.roles.ensure({ name: ADMIN_ROLE, description: 'Full access to the admin API' });
  await deps.roles.ensure({ name: ADMIN_READ_ROLE, description: 'Read-only access to the admin API' });
  await deps.resources.ensure({ identifier: adminAudience(issuer), name: 'Keyward admin API', access_token_ttl: 300 });

  const input = {
    client_name: 'Bootstrap admin',
    grant_types: ['client_credentials' as const],
    token_endpoint_auth_method: 'client_secret_basic' as const,
    roles: [ADMIN_ROLE],
    default_resource: adminAudience(issuer),
    first_party: true,
    admin_console: true,
  };

  if (fromEnv.clientId && fromEnv.clientSecret) {
    if (!(await deps.clients.exists(fromEnv.clientId))) {
      await deps.clients.create({ ...input, client_id: fromEnv.clientId, client_secret: fromEnv.clientSecret });
      return { clientId: fromEnv.clientId, created: true };
    }
    if (!(await deps.clients.verifySecret(fromEnv.clientId, fromEnv.clientSecret))) {
      await deps.clients.setSecret(fromEnv.clientId, fromEnv.clientSecret);
    }
    // The environment names the admin client: it stays (or, in a store from before admin
    // consoles existed, becomes) one.
    const current = await deps.clients.get(fromEnv.clientId);
    if (!current.admin_console || !current.first_party) await deps.clients.update(fromEnv.clientId, { admin_console: true, first_party: true });
    return { clientId: fromEnv.clientId, created: false };
  }

  const existing = await deps.prisma.clientRole.count({ where: { roleName: ADMIN_ROLE } });
  if (existing > 0) {
    await designateLegacyBootstrapClients(deps, issuer);
    return undefined;
  }
  const { client, client_secret } = await deps.clients.create(input);
  return { clientId: client.client_id, created: true, ...(client_secret ? { generatedSecret: client_secret } : {}) };
}

/**
 * A store from before admin consoles existed has admin clients that are not designated, and the
 * admin API refuses their tokens. While no client holding the admin role is an admin console,
 * the ones this bootstrap created (first-party client credentials defaulting to the admin API)
 * become admin consoles, so an upgrade keeps its working admin client.
 */
async function designateLegacyBootstrapClients(
  deps: { clients: ClientService; prisma: import('../store/store.ts').PrismaClient },
  issuer: string,
): Promise<void> {
  const holders = await deps.prisma.clientRole.findMany({ where: { roleName: ADMIN_ROLE }, select: { clientId: true } });
  const admins = await Promise.all(holders.map((h) => deps.clients.get(h.clientId)));
  if (admins.some((c) => c.admin_console)) return;
  for (const client of admins) {
    if (client.first_party && client.default_resource === adminAudience(issuer) && client.grant_types.includes('client_credentials')) {
      await deps.clients.update(client.client_id, { admin_console: true });
    }
  }
}
