import type { ChangeFeed } from '../../store/changes.ts';
import type { PrismaClient } from '../../store/store.ts';
import { Conflict, Invalid, NotFound } from '../../domain/errors.ts';
import { isMissingRow, isUniqueViolation } from '../../store/prisma-errors.ts';
import { LookupCache } from '../lookup-cache.ts';
import type { FederatedCredentialInput } from './input.ts';
import type { FederatedCredential } from './rules.ts';

/** Most credentials one client may hold: each is tried in turn at every authentication. */
export const MAX_CREDENTIALS_PER_CLIENT = 20;
/** Most credentials the dry run considers. */
const MAX_DRY_RUN_CANDIDATES = 500;

/** A credential as the admin API and the CLI show it (RFC 7591-style snake_case). */
export interface FederatedCredentialView {
  id: string;
  client_id: string;
  name: string;
  issuer: string;
  jwks_uri?: string;
  jwks?: { keys: Record<string, unknown>[] };
  subject?: string;
  subject_pattern?: string;
  audience?: string;
  claims?: Record<string, string | number | boolean>;
  created_at: string;
}

type Row = NonNullable<Awaited<ReturnType<PrismaClient['federatedCredential']['findUnique']>>>;

function toCredential(row: Row): FederatedCredential {
  return {
    id: row.id,
    clientId: row.clientId,
    name: row.name,
    issuer: row.issuer,
    jwksUri: row.jwksUri ?? undefined,
    jwks: (row.jwks as FederatedCredential['jwks'] | null) ?? undefined,
    subject: row.subject ?? undefined,
    subjectPattern: row.subjectPattern ?? undefined,
    audience: row.audience ?? undefined,
    claims: (row.claims as FederatedCredential['claims'] | null) ?? {},
    createdAt: row.createdAt,
  };
}

export function toView(credential: FederatedCredential): FederatedCredentialView {
  return {
    id: credential.id,
    client_id: credential.clientId,
    name: credential.name,
    issuer: credential.issuer,
    ...(credential.jwksUri ? { jwks_uri: credential.jwksUri } : {}),
    ...(credential.jwks ? { jwks: credential.jwks } : {}),
    ...(credential.subject !== undefined ? { subject: credential.subject } : {}),
    ...(credential.subjectPattern !== undefined ? { subject_pattern: credential.subjectPattern } : {}),
    ...(credential.audience !== undefined ? { audience: credential.audience } : {}),
    ...(Object.keys(credential.claims).length ? { claims: credential.claims } : {}),
    created_at: credential.createdAt.toISOString(),
  };
}

/**
 * The federated credentials of clients: create, list, delete, and the cached per-client list
 * the token endpoint reads. A change is published as a change of its client, so every
 * instance's caches drop that client's entry (like the client registry's own).
 */
export class FederatedCredentialService {
  readonly #byClient: LookupCache<{ items: FederatedCredential[] }>;

  constructor(
    private readonly prisma: PrismaClient,
    private readonly changes: ChangeFeed,
  ) {
    this.#byClient = new LookupCache(async (clientId) => {
      const rows = await prisma.federatedCredential.findMany({ where: { clientId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: MAX_CREDENTIALS_PER_CLIENT });
      return { items: rows.map(toCredential) };
    }, { max: 10_000, absentTtlMs: 5_000 });
    changes.subscribe((change) => {
      if (change.kind !== 'client') return;
      if (change.id) this.#byClient.invalidate(change.id);
      else this.#byClient.clear();
    });
  }

  /** Hot path: the client's credentials in creation order (cached until the change feed names the client). */
  async forClient(clientId: string): Promise<FederatedCredential[]> {
    return (await this.#byClient.get(clientId))?.items ?? [];
  }

  /** Every credential (bounded), oldest first: the dry run's candidates. */
  async all(): Promise<FederatedCredential[]> {
    const rows = await this.prisma.federatedCredential.findMany({ orderBy: [{ createdAt: 'asc' }, { id: 'asc' }], take: MAX_DRY_RUN_CANDIDATES });
    return rows.map(toCredential);
  }

  async list(clientId: string): Promise<FederatedCredentialView[]> {
    await this.#requireClient(clientId);
    const rows = await this.prisma.federatedCredential.findMany({ where: { clientId }, orderBy: [{ createdAt: 'asc' }, { id: 'asc' }] });
    return rows.map((row) => toView(toCredential(row)));
  }

  async create(clientId: string, input: FederatedCredentialInput): Promise<FederatedCredentialView> {
    await this.#requireClient(clientId);
    const count = await this.prisma.federatedCredential.count({ where: { clientId } });
    if (count >= MAX_CREDENTIALS_PER_CLIENT) {
      throw new Invalid(`client ${clientId} already has ${MAX_CREDENTIALS_PER_CLIENT} federated credentials; delete one first`, { name: 'too many federated credentials' });
    }
    try {
      const row = await this.prisma.federatedCredential.create({
        data: {
          clientId,
          name: input.name,
          issuer: input.issuer,
          jwksUri: input.jwks_uri ?? null,
          ...(input.jwks ? { jwks: input.jwks as object } : {}),
          subject: input.subject ?? null,
          subjectPattern: input.subject_pattern ?? null,
          audience: input.audience ?? null,
          ...(input.claims ? { claims: input.claims } : {}),
        },
      });
      await this.changes.publish({ kind: 'client', id: clientId });
      return toView(toCredential(row));
    } catch (error) {
      if (isUniqueViolation(error)) throw new Conflict(`client ${clientId} already has a federated credential named ${input.name}`);
      throw error;
    }
  }

  async delete(clientId: string, id: string): Promise<FederatedCredentialView> {
    const row = await this.prisma.federatedCredential.findFirst({ where: { id, clientId } });
    if (!row) throw new NotFound(`client ${clientId} has no federated credential ${id}`);
    try {
      await this.prisma.federatedCredential.delete({ where: { id } });
    } catch (error) {
      if (isMissingRow(error)) throw new NotFound(`client ${clientId} has no federated credential ${id}`);
      throw error;
    }
    await this.changes.publish({ kind: 'client', id: clientId });
    return toView(toCredential(row));
  }

  async #requireClient(clientId: string): Promise<void> {
    const found = await this.prisma.client.count({ where: { clientId } });
    if (!found) throw new NotFound(`client ${clientId} does not exist`);
  }
}
