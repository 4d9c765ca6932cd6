import { LRUCache } from 'lru-cache';
import type { PrismaClient } from '../store/store.ts';
import type { ChangeFeed } from '../store/changes.ts';
import { Conflict, Invalid, NotFound } from '../domain/errors.ts';
import { pageOf, type Page, type PageRequest } from '../domain/page.ts';
import { isForeignKeyViolation, isMissingRow, isUniqueViolation } from '../store/prisma-errors.ts';
import { ADMIN_READ_ROLE, ADMIN_ROLE } from './admin-roles.ts';

export const ROLE_NAME = /^[a-z][a-z0-9:_-]{0,63}$/;

export interface RoleInput {
  name: string;
  description?: string;
  permissions?: string[];
  /** Identifier of the API the role is scoped to; absent: a global role. */
  resource?: string | undefined;
}

export interface RolePatch {
  description?: string | undefined;
  permissions?: string[] | undefined;
}

/** A role as the admin API and CLI show it. */
export interface RoleView {
  name: string;
  description: string;
  permissions: string[];
  /** The API the role is scoped to (roles per API), or null for a global role. */
  resource: string | null;
  created_at: string;
  updated_at: string;
}

type Row = Awaited<ReturnType<PrismaClient['role']['findMany']>>[number];

function toView(row: Row): RoleView {
  return {
    name: row.name,
    description: row.description,
    permissions: row.permissions,
    resource: row.resource,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** The admin API's own roles: deleting one could lock every administrator out. */
const BUILT_IN = new Set([ADMIN_ROLE, ADMIN_READ_ROLE]);

interface CachedRole {
  permissions: string[];
  resource: string | null;
}

/** The role map, and the permission sets computed from it (per audience and role list). */
interface RoleCache {
  roles: Map<string, CachedRole>;
  permissions: LRUCache<string, ReadonlySet<string>>;
}

/** Distinct (audience, role list) pairs whose permission set is kept; a fleet has few. */
const PERMISSION_SETS = 10_000;

/**
 * Roles and their permissions; the role map is cached for the token endpoint.
 *
 * Roles per API: a role scoped to one resource server counts only in tokens for that API.
 * `audience` below is the API a token is for; undefined means no API (ID token, userinfo),
 * where only global roles count.
 */
export class RoleService {
  #cache: Promise<RoleCache> | undefined;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly changes: ChangeFeed,
  ) {
    changes.subscribe((change) => {
      if (change.kind === 'role') this.#cache = undefined;
    });
  }

  #loaded(): Promise<RoleCache> {
    if (!this.#cache) {
      const loading = this.prisma.role.findMany({ select: { name: true, permissions: true, resource: true } })
        .then((rows) => ({
          roles: new Map(rows.map((r) => [r.name, { permissions: r.permissions, resource: r.resource }])),
          permissions: new LRUCache<string, ReadonlySet<string>>({ max: PERMISSION_SETS }),
        }));
      this.#cache = loading;
      loading.catch(() => { if (this.#cache === loading) this.#cache = undefined; });
    }
    return this.#cache;
  }

  /**
   * Union of the permissions of the given roles (hot path, cached). With an `audience`, only
   * global roles and roles scoped to that API count; without one, every role counts (the
   * admin API's own checks, which name global roles only).
   */
  async permissionsOf(roles: readonly string[], audience?: string): Promise<ReadonlySet<string>> {
    const cache = await this.#loaded();
    // Every token request asks this for its client's roles: computed once per role change.
    const key = `${audience ?? ''}\n${roles.join('\n')}`;
    let permitted = cache.permissions.get(key);
    if (!permitted) {
      const counted = audience === undefined ? roles : rolesScopedTo(cache.roles, roles, audience);
      permitted = new Set(counted.flatMap((role) => cache.roles.get(role)?.permissions ?? []));
      cache.permissions.set(key, permitted);
    }
    return permitted;
  }

  /**
   * The roles a token for `audience` carries: the global ones and those scoped to that API.
   * Undefined `audience` (ID token, userinfo): the global roles only.
   */
  async rolesFor(roles: readonly string[], audience: string | undefined): Promise<string[]> {
    return rolesScopedTo((await this.#loaded()).roles, roles, audience);
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

  async create(input: RoleInput): Promise<RoleView> {
    if (input.resource && !(await this.prisma.resourceServer.count({ where: { identifier: input.resource } }))) {
      throw new Invalid(`unknown resource server: ${input.resource}`, { resource: 'no resource server has this identifier' });
    }
    try {
      const row = await this.prisma.role.create({
        data: {
          name: input.name, description: input.description ?? '', permissions: [...new Set(input.permissions ?? [])],
          ...(input.resource ? { resource: input.resource } : {}),
        },
      });
      await this.changes.publish({ kind: 'role', id: input.name });
      return toView(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw new Conflict(`role ${input.name} already exists`, { name: 'already exists' });
      if (isForeignKeyViolation(error)) throw new Invalid(`unknown resource server: ${input.resource}`, { resource: 'no resource server has this identifier' });
      throw error;
    }
  }

  async get(name: string): Promise<RoleView> {
    const row = await this.prisma.role.findUnique({ where: { name } });
    if (!row) throw new NotFound(`role ${name} does not exist`);
    return toView(row);
  }

  /** Roles ordered by name. */
  async list(page: PageRequest): Promise<Page<RoleView>> {
    const rows = await this.prisma.role.findMany({
      ...(page.after ? { where: { name: { gt: page.after } } } : {}),
      orderBy: { name: 'asc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page.limit, (r) => r.name, toView);
  }

  async update(name: string, patch: RolePatch): Promise<RoleView> {
    try {
      const row = await this.prisma.role.update({
        where: { name },
        data: {
          ...(patch.description !== undefined ? { description: patch.description } : {}),
          ...(patch.permissions !== undefined ? { permissions: [...new Set(patch.permissions)] } : {}),
        },
      });
      await this.changes.publish({ kind: 'role', id: name });
      return toView(row);
    } catch (error) {
      if (isMissingRow(error)) throw new NotFound(`role ${name} does not exist`);
      throw error;
    }
  }

  /** Deletes a role; its assignments to users and clients go with it. */
  async delete(name: string): Promise<void> {
    if (BUILT_IN.has(name)) throw new Conflict(`role ${name} is built in and cannot be deleted`);
    try {
      await this.prisma.role.delete({ where: { name } });
    } catch (error) {
      if (isMissingRow(error)) throw new NotFound(`role ${name} does not exist`);
      throw error;
    }
    await this.changes.publish({ kind: 'role', id: name });
    // Users' and clients' role lists changed too.
    await this.changes.publish({ kind: 'user' });
  }
}

/** Rejects role names that do not exist, naming them (for assigning roles to users and clients). */
export async function checkRoles(prisma: PrismaClient, roles: readonly string[]): Promise<void> {
  if (!roles.length) return;
  const found = await prisma.role.findMany({ where: { name: { in: [...roles] } }, select: { name: true } });
  const missing = [...new Set(roles)].filter((r) => !found.some((f) => f.name === r));
  if (missing.length) throw new Invalid(`unknown role(s): ${missing.join(', ')}`, { roles: `unknown: ${missing.join(', ')}` });
}

/** Of `roles`, the global ones and those scoped to `audience` (none scoped when it is undefined). */
function rolesScopedTo(map: Map<string, CachedRole>, roles: readonly string[], audience: string | undefined): string[] {
  return roles.filter((role) => {
    const scope = map.get(role)?.resource ?? null;
    return scope === null || scope === audience;
  });
}
