import type { PrismaClient } from '../store/store.ts';
import type { ChangeFeed } from '../store/changes.ts';
import { Conflict, NotFound } from '../domain/errors.ts';
import { pageOf, type Page, type PageRequest } from '../domain/page.ts';
import { isMissingRow, isUniqueViolation } from '../store/prisma-errors.ts';
import { isUuid } from './ids.ts';
import { LookupCache, type CacheStats } from './lookup-cache.ts';
import { hashPassword } from './passwords.ts';
import { checkRoles } from './roles.ts';

export interface UserInput {
  username: string;
  email?: string | undefined;
  name?: string | undefined;
  password: string;
  roles?: string[] | undefined;
  disabled?: boolean | undefined;
}

export interface UserPatch {
  username?: string | undefined;
  email?: string | null | undefined;
  name?: string | null | undefined;
  password?: string | undefined;
  disabled?: boolean | undefined;
}

/** A user as the admin API and CLI show it: never the password hash. */
export interface UserView {
  id: string;
  username: string;
  email: string | null;
  email_verified: boolean;
  name: string | null;
  disabled: boolean;
  roles: string[];
  created_at: string;
  updated_at: string;
}

/** What an ID token or userinfo may say about an enabled user (src/oidc/accounts.ts picks by scope). */
export interface AccountRecord {
  id: string;
  username: string;
  email: string | null;
  emailVerified: boolean;
  name: string | null;
}

/** What a password login needs (src/identity/password-login.ts); nothing outside src/identity asks for the hash. */
export interface Credentials {
  id: string;
  username: string;
  passwordHash: string;
  disabled: boolean;
}

/**
 * Usernames are case-insensitive (issue 10 F4): stored lowercased, so the unique index on
 * `username` is unique regardless of case (the `users_username_lowercase` check keeps it so).
 * The username grammar is ASCII (identity/input.ts), where JS and SQL lowercasing agree.
 */
export function normalizeUsername(username: string): string {
  return username.trim().toLowerCase();
}

const include = { roles: { select: { roleName: true } } } as const;
type Row = NonNullable<Awaited<ReturnType<PrismaClient['user']['findUnique']>>> & { roles: { roleName: string }[] };

function toView(row: Row): UserView {
  return {
    id: row.id,
    username: row.username,
    email: row.email,
    email_verified: row.emailVerified,
    name: row.name,
    disabled: row.disabled,
    roles: row.roles.map((r) => r.roleName).sort(),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

/** User accounts: creation with an argon2id password hash, roles, lookups. No HTTP in here. */
export class UserService {
  /** Role names per user id, for token claims; bounded, dropped when the change feed names the user. */
  readonly #roles: LookupCache<{ roles: string[] }>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly changes: ChangeFeed,
  ) {
    this.#roles = new LookupCache(async (id) => {
      const rows = await this.prisma.userRole.findMany({ where: { userId: id }, select: { roleName: true } });
      return { roles: rows.map((r) => r.roleName).sort() };
    }, { max: 10_000, absentTtlMs: 5_000 });
    changes.subscribe((change) => {
      if (change.kind === 'user' && change.id) this.#roles.invalidate(change.id);
      else if (change.kind === 'user' || change.kind === 'role') this.#roles.clear();
    });
  }

  async create(input: UserInput): Promise<UserView> {
    await checkRoles(this.prisma, input.roles ?? []);
    const username = normalizeUsername(input.username);
    const passwordHash = await hashPassword(input.password);
    try {
      const row = await this.prisma.user.create({
        data: {
          username,
          email: input.email ?? null,
          name: input.name ?? null,
          passwordHash,
          disabled: input.disabled ?? false,
          roles: { create: (input.roles ?? []).map((roleName) => ({ roleName })) },
        },
        include,
      });
      await this.changes.publish({ kind: 'user', id: row.id });
      return toView(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw new Conflict(`user ${username} already exists`, { username: 'already taken' });
      throw error;
    }
  }

  async get(id: string): Promise<UserView> {
    const row = isUuid(id) ? await this.prisma.user.findUnique({ where: { id }, include }) : null;
    if (!row) throw new NotFound(`user ${id} does not exist`);
    return toView(row);
  }

  /** Users ordered by id. */
  async list(page: PageRequest): Promise<Page<UserView>> {
    const rows = await this.prisma.user.findMany({
      ...(page.after ? { where: { id: { gt: page.after } } } : {}),
      orderBy: { id: 'asc' },
      take: page.limit + 1,
      include,
    });
    return pageOf(rows as Row[], page.limit, (r) => r.id, toView);
  }

  async update(id: string, patch: UserPatch): Promise<UserView> {
    await this.get(id);
    const username = patch.username === undefined ? undefined : normalizeUsername(patch.username);
    const data = {
      ...(username !== undefined ? { username } : {}),
      ...(patch.email !== undefined ? { email: patch.email } : {}),
      ...(patch.name !== undefined ? { name: patch.name } : {}),
      ...(patch.disabled !== undefined ? { disabled: patch.disabled } : {}),
      ...(patch.password !== undefined ? { passwordHash: await hashPassword(patch.password) } : {}),
    };
    try {
      const row = await this.prisma.user.update({ where: { id }, data, include });
      await this.changes.publish({ kind: 'user', id });
      return toView(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw new Conflict(`user ${username ?? ''} already exists`, { username: 'already taken' });
      if (isMissingRow(error)) throw new NotFound(`user ${id} does not exist`);
      throw error;
    }
  }

  async delete(id: string): Promise<void> {
    await this.get(id);
    try {
      await this.prisma.user.delete({ where: { id } });
    } catch (error) {
      if (isMissingRow(error)) throw new NotFound(`user ${id} does not exist`);
      throw error;
    }
    await this.changes.publish({ kind: 'user', id });
  }

  /** Replaces the user's roles with exactly `roles`. */
  async setRoles(id: string, roles: string[]): Promise<UserView> {
    await this.get(id);
    await checkRoles(this.prisma, roles);
    await this.prisma.$transaction([
      this.prisma.userRole.deleteMany({ where: { userId: id } }),
      this.prisma.userRole.createMany({ data: [...new Set(roles)].map((roleName) => ({ userId: id, roleName })) }),
    ]);
    await this.changes.publish({ kind: 'user', id });
    return this.get(id);
  }

  /** The user behind a token's `sub`; undefined when unknown, malformed or disabled. */
  async account(id: string): Promise<AccountRecord | undefined> {
    if (!isUuid(id)) return undefined;
    const user = await this.prisma.user.findUnique({
      where: { id },
      select: { id: true, username: true, email: true, emailVerified: true, name: true, disabled: true },
    });
    if (!user || user.disabled) return undefined;
    return { id: user.id, username: user.username, email: user.email, emailVerified: user.emailVerified, name: user.name };
  }

  /** The username to greet someone by (disabled users included); undefined for an unknown id. */
  async usernameOf(id: string): Promise<string | undefined> {
    if (!isUuid(id)) return undefined;
    return (await this.prisma.user.findUnique({ where: { id }, select: { username: true } }))?.username;
  }

  /** For password login only (src/identity/password-login.ts); the username matches case-insensitively. */
  async credentials(username: string): Promise<Credentials | undefined> {
    return (await this.prisma.user.findUnique({
      where: { username: normalizeUsername(username) },
      select: { id: true, username: true, passwordHash: true, disabled: true },
    })) ?? undefined;
  }

  /**
   * Replaces the password hash only if it is still `previous`, so a concurrent password change
   * by an admin is never overwritten; true when it was replaced.
   */
  async replacePasswordHash(id: string, previous: string, next: string): Promise<boolean> {
    const { count } = await this.prisma.user.updateMany({ where: { id, passwordHash: previous }, data: { passwordHash: next } });
    return count === 1;
  }

  /** Role names of a user (for token claims); empty for an unknown id. */
  async rolesOf(id: string): Promise<string[]> {
    if (!isUuid(id)) return [];
    return [...(await this.#roles.get(id.toLowerCase()))?.roles ?? []];
  }

  /** Hits and misses of the user-roles cache (for /metrics). */
  cacheStats(): CacheStats {
    return this.#roles.stats();
  }
}
