import type { PrismaClient } from '../store/store.ts';
import type { SigningAlg } from '../keys/algorithms.ts';
import type { ChangeFeed } from '../store/changes.ts';
import { Conflict, NotFound } from '../domain/errors.ts';
import { pageOf, type Page, type PageRequest } from '../domain/page.ts';
import { isMissingRow, isUniqueViolation } from '../store/prisma-errors.ts';
import { isUuid } from './ids.ts';
import { LookupCache, type CacheStats } from './lookup-cache.ts';

/** An API: the audience of access tokens and the scopes it understands. */
export interface ResourceServerRecord {
  id: string;
  identifier: string;
  name: string;
  scopes: string[];
  accessTokenTtl: number;
  signingAlg: SigningAlg;
}

export interface ResourceInput {
  identifier: string;
  name?: string;
  scopes?: string[];
  access_token_ttl?: number;
  signing_alg?: SigningAlg;
}

export type ResourcePatch = Partial<ResourceInput>;

/** A resource server as the admin API and CLI show it. */
export interface ResourceView {
  id: string;
  identifier: string;
  name: string;
  scopes: string[];
  access_token_ttl: number;
  signing_alg: SigningAlg;
  created_at: string;
  updated_at: string;
}

type Row = Awaited<ReturnType<PrismaClient['resourceServer']['findMany']>>[number];

function toView(row: Row): ResourceView {
  return {
    id: row.id,
    identifier: row.identifier,
    name: row.name,
    scopes: row.scopes,
    access_token_ttl: row.accessTokenTtl,
    signing_alg: row.signingAlg as SigningAlg,
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export class ResourceService {
  /** Bounded: a `resource` parameter is the caller's to choose, so unknown values are believed absent only briefly. */
  readonly #byIdentifier: LookupCache<ResourceServerRecord>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly changes: ChangeFeed,
  ) {
    this.#byIdentifier = new LookupCache(async (identifier) => {
      const r = await this.prisma.resourceServer.findUnique({ where: { identifier } });
      return r ? {
        id: r.id,
        identifier: r.identifier,
        name: r.name,
        scopes: r.scopes,
        accessTokenTtl: r.accessTokenTtl,
        signingAlg: r.signingAlg as SigningAlg,
      } : undefined;
    }, { max: 1_000, absentTtlMs: 5_000 });
    changes.subscribe((change) => {
      if (change.kind !== 'resource') return;
      if (change.id) this.#byIdentifier.invalidate(change.id);
      else this.#byIdentifier.clear();
    });
  }

  /** Hot path: the resource server for an `aud`/`resource` value, from the cache. */
  async byIdentifier(identifier: string): Promise<ResourceServerRecord | undefined> {
    // Longer than any identifier worth a lookup (a URL), or text the store refuses: never one.
    if (identifier.length > 2048 || identifier.includes('\0')) return undefined;
    return this.#byIdentifier.get(identifier);
  }

  /** Hits and misses of the resource-server cache (for /metrics). */
  cacheStats(): CacheStats {
    return this.#byIdentifier.stats();
  }

  /** Creates the resource server when missing. */
  async ensure(input: ResourceInput): Promise<void> {
    await this.prisma.resourceServer.upsert({
      where: { identifier: input.identifier },
      create: {
        identifier: input.identifier,
        name: input.name ?? '',
        scopes: input.scopes ?? [],
        accessTokenTtl: input.access_token_ttl ?? 3600,
        signingAlg: input.signing_alg ?? 'ES256',
      },
      update: {},
    });
    await this.changes.publish({ kind: 'resource', id: input.identifier });
  }

  async create(input: ResourceInput): Promise<ResourceView> {
    try {
      const row = await this.prisma.resourceServer.create({
        data: {
          identifier: input.identifier,
          name: input.name ?? '',
          scopes: [...new Set(input.scopes ?? [])],
          accessTokenTtl: input.access_token_ttl ?? 3600,
          signingAlg: input.signing_alg ?? 'ES256',
        },
      });
      await this.changes.publish({ kind: 'resource', id: input.identifier });
      return toView(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw new Conflict(`resource server ${input.identifier} already exists`, { identifier: 'already registered' });
      throw error;
    }
  }

  async get(id: string): Promise<ResourceView> {
    const row = isUuid(id) ? await this.prisma.resourceServer.findUnique({ where: { id } }) : null;
    if (!row) throw new NotFound(`resource server ${id} does not exist`);
    return toView(row);
  }

  /** Resource servers ordered by id. */
  async list(page: PageRequest): Promise<Page<ResourceView>> {
    const rows = await this.prisma.resourceServer.findMany({
      ...(page.after ? { where: { id: { gt: page.after } } } : {}),
      orderBy: { id: 'asc' },
      take: page.limit + 1,
    });
    return pageOf(rows, page.limit, (r) => r.id, toView);
  }

  async update(id: string, patch: ResourcePatch): Promise<ResourceView> {
    const before = await this.get(id);
    try {
      const row = await this.prisma.resourceServer.update({
        where: { id },
        data: {
          ...(patch.identifier !== undefined ? { identifier: patch.identifier } : {}),
          ...(patch.name !== undefined ? { name: patch.name } : {}),
          ...(patch.scopes !== undefined ? { scopes: [...new Set(patch.scopes)] } : {}),
          ...(patch.access_token_ttl !== undefined ? { accessTokenTtl: patch.access_token_ttl } : {}),
          ...(patch.signing_alg !== undefined ? { signingAlg: patch.signing_alg } : {}),
        },
      });
      await this.changes.publish({ kind: 'resource', id: before.identifier });
      // The new identifier may be cached as absent.
      if (row.identifier !== before.identifier) await this.changes.publish({ kind: 'resource', id: row.identifier });
      return toView(row);
    } catch (error) {
      if (isUniqueViolation(error)) throw new Conflict(`resource server ${patch.identifier ?? ''} already exists`, { identifier: 'already registered' });
      if (isMissingRow(error)) throw new NotFound(`resource server ${id} does not exist`);
      throw error;
    }
  }

  async delete(id: string): Promise<void> {
    const before = await this.get(id);
    try {
      await this.prisma.resourceServer.delete({ where: { id } });
    } catch (error) {
      if (isMissingRow(error)) throw new NotFound(`resource server ${id} does not exist`);
      throw error;
    }
    await this.changes.publish({ kind: 'resource', id: before.identifier });
  }
}
