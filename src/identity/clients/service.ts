import { randomBytes } from 'node:crypto';
import type { PrismaClient } from '../../store/store.ts';
import type { ChangeFeed } from '../../store/changes.ts';
import { Conflict, Invalid, NotFound } from '../../domain/errors.ts';
import { pageOf, type Page, type PageRequest } from '../../domain/page.ts';
import { isMissingRow, isUniqueViolation } from '../../store/prisma-errors.ts';
import { isPrivateHost } from '../network.ts';
import { CLIENT_ID } from '../ids.ts';
import type { CacheStats } from '../lookup-cache.ts';
import { checkRoles } from '../roles.ts';
import type { SecretHasher } from '../secrets.ts';
import { ClientRecordCache } from './cache.ts';
import { clientShapeIssues, isConfidential, metadataOf, type AuthMethod, type ClientMetadata, type GrantType, type MetadataInput } from './metadata.ts';
import { include, toView, type ClientRecord, type ClientRow, type ClientView } from './rows.ts';
import { ClientSecrets } from './secrets.ts';
import type { BoundClientMetadata } from './binding.ts';

export interface ClientInput extends BoundClientMetadata {
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
  allowed_resources?: string[];
  admin_console?: boolean;
  token_exchange_audiences?: string[];
  roles?: string[];
  first_party?: boolean;
  resource_server?: string;
  disabled?: boolean;
}

/** A partial update; `null` clears an optional field. Secrets change only through rotateSecret. */
export interface ClientPatch extends Partial<MetadataInput> {
  client_name?: string | undefined;
  roles?: string[] | undefined;
  first_party?: boolean | undefined;
  resource_server?: string | null | undefined;
  disabled?: boolean | undefined;
}

export interface ClientServiceOptions {
  /** KEYWARD_ALLOW_PRIVATE_JWKS_URI: a jwks_uri may name a private or loopback address. */
  allowPrivateJwksUri?: boolean;
  /** KEYWARD_CLIENT_CACHE_SIZE: client records kept in memory (default 50,000). */
  cacheSize?: number;
}

/** Refuses metadata that breaks a rule between fields, naming every field at fault. */
function checkShape(metadata: ClientMetadata, firstParty: boolean | undefined, options: ClientServiceOptions): void {
  const issues = clientShapeIssues({ ...metadata, first_party: firstParty });
  if (metadata.jwks_uri && !options.allowPrivateJwksUri && isPrivateHost(new URL(metadata.jwks_uri).hostname)) {
    issues.push({ field: 'jwks_uri', message: 'names a private or loopback address, which Keyward never fetches; publish the keys elsewhere, give jwks inline, or set KEYWARD_ALLOW_PRIVATE_JWKS_URI=true' });
  }
  if (!issues.length) return;
  throw new Invalid(
    `invalid client metadata: ${issues.map((i) => `${i.field}: ${i.message}`).join('; ')}`,
    Object.fromEntries(issues.map((i) => [i.field, i.message])),
  );
}

/** Client registry: creation, lookup and secret rotation. No HTTP in here. */
export class ClientService {
  readonly #records: ClientRecordCache;
  readonly #secrets: ClientSecrets;

  constructor(
    private readonly prisma: PrismaClient,
    hasher: SecretHasher,
    private readonly changes: ChangeFeed,
    now: () => Date,
    private readonly options: ClientServiceOptions = {},
  ) {
    this.#records = new ClientRecordCache(prisma, changes, options.cacheSize);
    this.#secrets = new ClientSecrets(prisma, hasher, changes, now);
  }

  /** Hot path: cached until the change feed says otherwise. A string no client id can be is never looked up. */
  async record(clientId: string): Promise<ClientRecord | undefined> {
    if (!CLIENT_ID.test(clientId)) return undefined;
    return this.#records.get(clientId);
  }

  /** Hits and misses of the client-record cache (for /metrics). */
  cacheStats(): CacheStats {
    return this.#records.stats();
  }

  /** Constant-time check of a presented secret against every unexpired secret of the client. */
  async verifySecret(clientId: string, secret: string): Promise<boolean> {
    return this.#secrets.verify(await this.record(clientId), secret);
  }

  async get(clientId: string): Promise<ClientView> {
    const row = await this.prisma.client.findUnique({ where: { clientId }, include });
    if (!row) throw new NotFound(`client ${clientId} does not exist`);
    return toView(row as ClientRow);
  }

  async exists(clientId: string): Promise<boolean> {
    return (await this.prisma.client.count({ where: { clientId } })) > 0;
  }

  /** Creates a client; a confidential one gets a generated secret returned only here. */
  async create(input: ClientInput): Promise<{ client: ClientView; client_secret?: string }> {
    const metadata = metadataOf(input);
    checkShape(metadata, input.first_party, this.options);
    const clientId = input.client_id ?? randomBytes(16).toString('base64url');
    const secret = this.#secrets.initial(metadata.token_endpoint_auth_method, input.client_secret);
    await checkRoles(this.prisma, input.roles ?? []);
    await this.#checkResourceServer(input.resource_server);
    await this.#checkExchangeAudiences(metadata.token_exchange_audiences);
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
          ...(secret ? { secrets: { create: [secret.row] } } : {}),
        },
        include,
      });
      await this.changes.publish({ kind: 'client', id: clientId });
      return { client: toView(row as ClientRow), ...(secret ? { client_secret: secret.secret } : {}) };
    } catch (error) {
      if (isUniqueViolation(error)) throw new Conflict(`client ${clientId} already exists`);
      throw error;
    }
  }

  /**
   * Issues a new secret. Existing secrets stay valid until `previousExpiresInSeconds` from now
   * (0 revokes them at once); secrets already expired are deleted.
   */
  rotateSecret(clientId: string, previousExpiresInSeconds: number): Promise<{ client_secret: string; previous_secret_expires_at: string }> {
    return this.#secrets.rotate(clientId, previousExpiresInSeconds);
  }

  /** Replaces the stored secret with the given one (bootstrap from the environment). */
  setSecret(clientId: string, secret: string): Promise<void> {
    return this.#secrets.set(clientId, secret);
  }

  /** Clients ordered by client_id. */
  async list(page: PageRequest): Promise<Page<ClientView>> {
    const rows = await this.prisma.client.findMany({
      ...(page.after ? { where: { clientId: { gt: page.after } } } : {}),
      orderBy: { clientId: 'asc' },
      take: page.limit + 1,
      include,
    });
    return pageOf(rows as ClientRow[], page.limit, (r) => r.clientId, toView);
  }

  /**
   * Applies a partial update to the metadata; the merged result must pass the same rules as a
   * new client. A client that stops authenticating with a secret loses its stored secrets, so
   * none can come back to life by switching back.
   */
  async update(clientId: string, patch: ClientPatch): Promise<ClientView> {
    const current = await this.get(clientId);
    const defined = Object.fromEntries(Object.entries(patch).filter(([, v]) => v !== undefined)) as ClientPatch;
    const merged = { ...current, ...defined };
    const metadata = metadataOf(merged);
    checkShape(metadata, merged.first_party, this.options);
    if (patch.roles) await checkRoles(this.prisma, patch.roles);
    if (patch.resource_server) await this.#checkResourceServer(patch.resource_server);
    if (patch.token_exchange_audiences) await this.#checkExchangeAudiences(patch.token_exchange_audiences);
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

  /** RFC 8693 targets must be registered APIs (validated to exist, like resource_server). */
  async #checkExchangeAudiences(identifiers: readonly string[] | undefined): Promise<void> {
    if (!identifiers?.length) return;
    const found = await this.prisma.resourceServer.findMany({ where: { identifier: { in: [...identifiers] } }, select: { identifier: true } });
    const missing = identifiers.filter((id) => !found.some((f) => f.identifier === id));
    if (missing.length) {
      throw new Invalid(`unknown resource server(s): ${missing.join(', ')}`, { token_exchange_audiences: `unknown: ${missing.join(', ')}` });
    }
  }

  async #checkResourceServer(identifier: string | undefined | null): Promise<void> {
    if (!identifier) return;
    const found = await this.prisma.resourceServer.count({ where: { identifier } });
    if (!found) throw new Invalid(`unknown resource server: ${identifier}`, { resource_server: 'no resource server has this identifier' });
  }
}
