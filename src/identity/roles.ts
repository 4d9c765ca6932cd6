import type { PrismaClient } from '../store/store.ts';
import type { ChangeFeed } from './changes.ts';

export const ROLE_NAME = /^[a-z][a-z0-9:_-]{0,63}$/;

export interface RoleInput {
  name: string;
  description?: string;
  permissions?: string[];
}

/** Roles and their permissions; the permission map is cached for the token endpoint. */
export class RoleService {
  #permissions: Promise<Map<string, string[]>> | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly changes: ChangeFeed,
  ) {
    changes.subscribe((change) => {
      if (change.kind === 'role') this.#permissions = undefined;
    });
  }

  /** Union of the permissions of the given roles (hot path, cached). */
  async permissionsOf(roles: readonly string[]): Promise<Set<string>> {
    if (!this.#permissions) {
      const loading = this.prisma.role.findMany({ select: { name: true, permissions: true } })
        .then((rows) => new Map(rows.map((r) => [r.name, r.permissions])));
      this.#permissions = loading;
      loading.catch(() => { if (this.#permissions === loading) this.#permissions = undefined; });
    }
    const map = await this.#permissions;
    return new Set(roles.flatMap((role) => map.get(role) ?? []));
  }

  /** Creates the role when missing; leaves an existing one as the admin left it. */
  async ensure(input: RoleInput): Promise<void> {
    await this.prisma.role.upsert({
      where: { name: input.name },
      create: { name: input.name, description: input.description ?? '', permissions: input.permissions ?? [] },
      update: {},
    });
    await this.changes.publish({ kind: 'role', id: input.name });
  }
}
