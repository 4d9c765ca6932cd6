import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '../store/store.ts';
import type { ChangeFeed } from '../store/changes.ts';
import { Conflict, Invalid, NotFound } from '../domain/errors.ts';
import { pageOf, type Page, type PageRequest } from '../domain/page.ts';
import { isMissingRow } from '../store/prisma-errors.ts';
import type { SecretHasher } from './secrets.ts';

export type AuthMethod = 'client_secret_basic' | 'client_secret_post' | 'private_key_jwt' | 'none';
export type GrantType = 'authorization_code' | 'refresh_token' | 'client_credentials';

/** RFC 7591 client metadata as stored (never includes a secret). */
export interface ClientMetadata {
  grant_types: GrantType[];
  redirect_uris: string[];
  post_logout_redirect_uris: string[];
  token_endpoint_auth_method: AuthMethod;
  jwks?: { keys: object[] };
  jwks_uri?: string;
  /** Space-separated scopes this client may request. */
  scope?: string;
  /** The resource used when a token request names none. */
  default_resource?: string;
}

export interface ClientInput {
  client_id?: string;
  /** Only the bootstrap admin supplies its own secret; everyone else gets a generated one. */
  client_secret?: string;
  client_name: string;
  grant_types: GrantType[];
  redirect_uris?: string[];
  post_logout_redirect_uris?: string[];
  token_endpoint_auth_method?: AuthMethod;
  jwks?: { keys: object[] };
  jwks_uri?: string;
  scope?: string;
  default_resource?: string;
  roles?: string[];
  first_party?: boolean;
  resource_server?: string;
  disabled?: boolean;
}

/** A partial update; `null` clears an optional field. Secrets change only through rotateSecret. */
export interface ClientPatch {
  client_name?: string | undefined;
  grant_types?: GrantType[] | undefined;
  redirect_uris?: string[] | undefined;
  post_logout_redirect_uris?: string[] | undefined;
  token_endpoint_auth_method?: AuthMethod | undefined;
  jwks?: { keys: object[] } | null | undefined;
  jwks_uri?: string | null | undefined;
  scope?: string | null | undefined;
  default_resource?: string | null | undefined;
  roles?: string[] | undefined;
  first_party?: boolean | undefined;
  resource_server?: string | null | undefined;
  disabled?: boolean | undefined;
}

/** A client as the admin API and CLI show it. */
export interface ClientView extends ClientMetadata {
  client_id: string;
  client_name: string;
  roles: string[];
  first_party: boolean;
  resource_server: string | null;
  disabled: boolean;
  secrets: { id: string; created_at: string; expires_at: string | null }[];
  created_at: string;
  updated_at: string;
}

export interface StoredSecret {
  hash: string;
  expiresAt: Date | null;
}

/** What the token endpoint needs about a client, loaded once and cached. */
export interface ClientRecord {
  clientId: string;
  name: string;
  metadata: ClientMetadata;
  firstParty: boolean;
  disabled: boolean;
  resourceServer: string | null;
  roles: string[];
  secrets: StoredSecret[];
}

const include = { roles: true, secrets: { orderBy: { createdAt: 'asc' as const } } } as const;
type Row = NonNullable<Awaited<ReturnType<PrismaClient['client']['findUnique']>>> & {
  roles: { roleName: string }[];
  secrets: { id: string; hash: string; createdAt: Date; expiresAt: Date | null }[];
};

function toRecord(row: Row): ClientRecord {
  return {
    clientId: row.clientId,
    name: row.name,
    metadata: row.metadata as unknown as ClientMetadata,
    firstParty: row.firstParty,
    disabled: row.disabled,
    resourceServer: row.resourceServer,
    roles: row.roles.map((r) => r.roleName).sort(),
    secrets: row.secrets.map((s) => ({ hash: s.hash, expiresAt: s.expiresAt })),
  };
}

function toView(row: Row): ClientView {
  return {
    client_id: row.clientId,
    client_name: row.name,
    ...(row.metadata as unknown as ClientMetadata),
    roles: row.roles.map((r) => r.roleName).sort(),
    first_party: row.firstParty,
    resource_server: row.resourceServer,
    disabled: row.disabled,
    secrets: row.secrets.map((s) => ({ id: s.id, created_at: s.createdAt.toISOString(), expires_at: s.expiresAt?.toISOString() ?? null })),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}

export function isConfidential(method: AuthMethod): boolean {
  return method === 'client_secret_basic' || method === 'client_secret_post';
}

export function metadataOf(input: ClientInput): ClientMetadata {
  const method = input.token_endpoint_auth_method ?? (input.grant_types.includes('client_credentials') ? 'client_secret_basic' : 'none');
  return {
    grant_types: input.grant_types,
    redirect_uris: input.redirect_uris ?? [],
    post_logout_redirect_uris: input.post_logout_redirect_uris ?? [],
    token_endpoint_auth_method: method,
    ...(input.jwks ? { jwks: input.jwks } : {}),
    ...(input.jwks_uri ? { jwks_uri: input.jwks_uri } : {}),
    ...(input.scope ? { scope: input.scope } : {}),
    ...(input.default_resource ? { default_resource: input.default_resource } : {}),
  };
}

/** Client registry: creation, lookup and secret rotation. No HTTP in here. */
export class ClientService {
  readonly #cache = new Map<string, Promise<ClientRecord | undefined>>();

  constructor(
    private readonly prisma: PrismaClient,
    private readonly hasher: SecretHasher,
    private readonly changes: ChangeFeed,
    private readonly now: () => Date,
  ) {
    changes.subscribe((change) => {
      if (change.kind === 'client') {
        if (change.id) this.#cache.delete(change.id);
        else this.#cache.clear();
      } else if (change.kind === 'role') {
        this.#cache.clear();
      }
    });
  }

  /** Hot path: cached until the change feed says otherwise. */
  async record(clientId: string): Promise<ClientRecord | undefined> {
    let pending = this.#cache.get(clientId);
    if (!pending) {
      pending = this.prisma.client.findUnique({ where: { clientId }, include })
        .then((row) => (row ? toRecord(row as Row) : undefined));
      this.#cache.set(clientId, pending);
      pending.catch(() => this.#cache.delete(clientId));
    }
    return pending;
  }

  /** Constant-time check of a presented secret against every unexpired secret of the client. */
  async verifySecret(clientId: string, secret: string): Promise<boolean> {
    const record = await this.record(clientId);
    if (!record || record.disabled) return false;
    const now = this.now().getTime();
    let ok = false;
    for (const stored of record.secrets) {
      const unexpired = stored.expiresAt === null || stored.expiresAt.getTime() > now;
      // Evaluate every secret so the time taken does not reveal which one matched.
      if (this.hasher.matches(secret, stored.hash) && unexpired) ok = true;
    }
    return ok;
  }

  async get(clientId: string): Promise<ClientView> {
    const row = await this.prisma.client.findUnique({ where: { clientId }, include });
    if (!row) throw new NotFound(`client ${clientId} does not exist`);
    return toView(row as Row);
  }

  async exists(clientId: string): Promise<boolean> {
    return (await this.prisma.client.count({ where: { clientId } })) > 0;
  }

  /** Creates a client; a confidential one gets a generated secret returned only here. */
  async create(input: ClientInput): Promise<{ client: ClientView; client_secret?: string }> {
    const metadata = metadataOf(input);
    const clientId = input.client_id ?? randomBytes(16).toString('base64url');
    const secret = isConfidential(metadata.token_endpoint_auth_method) ? (input.client_secret ?? this.hasher.generate()) : undefined;
    await this.#checkRoles(input.roles ?? []);
    await this.#checkResourceServer(input.resource_server);
    try {
      const row = await this.prisma.client.create({
        data: {
          clientId,
          name: input.client_name,
          metadata: metadata as object,
          firstParty: input.first_party ?? false,
          disabled: input.disabled ?? false,
          resourceServer: input.resource_server ?? null,
          roles: { create: (input.roles ?? []).map((roleName) => ({ roleName })) },
          ...(secret ? { secrets: { create: [{ hash: this.hasher.hash(secret), createdAt: this.now() }] } } : {}),
        },
        include,
      });
      await this.changes.publish({ kind: 'client', id: clientId });
      return { client: toView(row as Row), ...(secret ? { client_secret: secret } : {}) };
    } catch (error) {
      if ((error as { code?: string }).code === 'P2002') throw new Conflict(`client ${clientId} already exists`);
      throw error;
    }
  }

  /**
   * Issues a new secret. Existing secrets stay valid until `previousExpiresInSeconds` from now
   * (0 revokes them at once); secrets already expired are deleted.
   */
  async rotateSecret(clientId: string, previousExpiresInSeconds: number): Promise<{ client_secret: string; previous_secret_expires_at: string }> {
    const record = await this.prisma.client.findUnique({ where: { clientId } });
    if (!record) throw new NotFound(`client ${clientId} does not exist`);
    if (!isConfidential((record.metadata as unknown as ClientMetadata).token_endpoint_auth_method)) {
      throw new Invalid(`client ${clientId} does not authenticate with a client secret`);
    }
    const now = this.now();
    const previousExpiresAt = new Date(now.getTime() + previousExpiresInSeconds * 1000);
    const secret = this.hasher.generate();
    await this.prisma.$transaction([
      this.prisma.clientSecret.deleteMany({ where: { clientId, expiresAt: { lte: now } } }),
      this.prisma.clientSecret.updateMany({
        where: { clientId, OR: [{ expiresAt: null }, { expiresAt: { gt: previousExpiresAt } }] },
        data: { expiresAt: previousExpiresAt },
      }),
      this.prisma.clientSecret.create({ data: { clientId, hash: this.hasher.hash(secret), createdAt: now } }),
    ]);
    // A client holds at most two live secrets: drop all but the newest previous one.
    const live = await this.prisma.clientSecret.findMany({ where: { clientId }, orderBy: { createdAt: 'desc' } });
    const extra = live.slice(2).map((s) => s.id);
    if (extra.length) await this.prisma.clientSecret.deleteMany({ where: { id: { in: extra } } });
    await this.changes.publish({ kind: 'client', id: clientId });
    return { client_secret: secret, previous_secret_expires_at: previousExpiresAt.toISOString() };
  }

  /** Replaces the stored secret with the given one (bootstrap from the environment). */
  async setSecret(clientId: string, secret: string): Promise<void> {
    await this.prisma.$transaction([
      this.prisma.clientSecret.deleteMany({ where: { clientId } }),
      this.prisma.clientSecret.create({ data: { clientId, hash: this.hasher.hash(secret), createdAt: this.now() } }),
    ]);
    await this.changes.publish({ kind: 'client', id: clientId });
  }

  /** Clients ordered by client_id. */
  async list(page: PageRequest): Promise<Page<ClientView>> {
    const rows = await this.prisma.client.findMany({
      ...(page.after ? { where: { clientId: { gt: page.after } } } : {}),
      orderBy: { clientId: 'asc' },
      take: page.limit + 1,
      include,
    });
    return pageOf(rows as Row[], page.limit, (r) => r.clientId, toView);
  }

  /**
   * Applies a partial update to the metadata. A client that stops authenticating with a
   * secret loses its stored secrets, so none can come back to life by switching back.
   */
  async update(clientId: string, patch: ClientPatch): Promise<ClientView> {
    const current = await this.get(clientId);
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as ClientPatch;
    const merged = { ...current, ...defined };
    const metadata = metadataOf({
      client_name: merged.client_name,
      grant_types: merged.grant_types,
      redirect_uris: merged.redirect_uris,
      post_logout_redirect_uris: merged.post_logout_redirect_uris,
      token_endpoint_auth_method: merged.token_endpoint_auth_method,
      ...(merged.jwks ? { jwks: merged.jwks } : {}),
      ...(merged.jwks_uri ? { jwks_uri: merged.jwks_uri } : {}),
      ...(merged.scope ? { scope: merged.scope } : {}),
      ...(merged.default_resource ? { default_resource: merged.default_resource } : {}),
    });
    if (patch.roles) await this.#checkRoles(patch.roles);
    if (patch.resource_server) await this.#checkResourceServer(patch.resource_server);
    const dropSecrets = !isConfidential(metadata.token_endpoint_auth_method);
    try {
      await this.prisma.$transaction([
        this.prisma.client.update({
          where: { clientId },
          data: {
            name: merged.client_name,
            metadata: metadata as object,
            firstParty: merged.first_party,
            disabled: merged.disabled,
            resourceServer: merged.resource_server ?? null,
          },
        }),
        ...(patch.roles ? [
          this.prisma.clientRole.deleteMany({ where: { clientId } }),
          this.prisma.clientRole.createMany({ data: [...new Set(patch.roles)].map((roleName) => ({ clientId, roleName })) }),
        ] : []),
        ...(dropSecrets ? [this.prisma.clientSecret.deleteMany({ where: { clientId } })] : []),
      ]);
    } catch (error) {
      if (isMissingRow(error)) throw new NotFound(`client ${clientId} does not exist`);
      throw error;
    }
    await this.changes.publish({ kind: 'client', id: clientId });
    return this.get(clientId);
  }

  /** Replaces the client's roles (what client-credentials tokens carry) with exactly `roles`. */
  async setRoles(clientId: string, roles: string[]): Promise<ClientView> {
    return this.update(clientId, { roles });
  }

  async delete(clientId: string): Promise<void> {
    try {
      await this.prisma.client.delete({ where: { clientId } });
    } catch (error) {
      if (isMissingRow(error)) throw new NotFound(`client ${clientId} does not exist`);
      throw error;
    }
    await this.changes.publish({ kind: 'client', id: clientId });
  }

  async #checkResourceServer(identifier: string | undefined | null): Promise<void> {
    if (!identifier) return;
    const found = await this.prisma.resourceServer.count({ where: { identifier } });
    if (!found) throw new Invalid(`unknown resource server: ${identifier}`, { resource_server: 'no resource server has this identifier' });
  }

  async #checkRoles(roles: string[]): Promise<void> {
    if (!roles.length) return;
    const found = await this.prisma.role.findMany({ where: { name: { in: roles } }, select: { name: true } });
    const missing = roles.filter((r) => !found.some((f) => f.name === r));
    if (missing.length) throw new Invalid(`unknown role(s): ${missing.join(', ')}`, { roles: `unknown: ${missing.join(', ')}` });
  }
}
