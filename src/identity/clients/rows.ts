import type { PrismaClient } from '../../store/store.ts';
import { parseStoredMetadata, type ClientMetadata } from './metadata.ts';

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

/** The relations every read of a client loads. */
export const include = { roles: true, secrets: { orderBy: { createdAt: 'asc' as const } } } as const;

export type ClientRow = NonNullable<Awaited<ReturnType<PrismaClient['client']['findUnique']>>> & {
  roles: { roleName: string }[];
  secrets: { id: string; hash: string; createdAt: Date; expiresAt: Date | null }[];
};

export function toRecord(row: ClientRow): ClientRecord {
  return {
    clientId: row.clientId,
    name: row.name,
    metadata: parseStoredMetadata(row.metadata),
    firstParty: row.firstParty,
    disabled: row.disabled,
    resourceServer: row.resourceServer,
    roles: row.roles.map((r) => r.roleName).sort(),
    secrets: row.secrets.map((s) => ({ hash: s.hash, expiresAt: s.expiresAt })),
  };
}

export function toView(row: ClientRow): ClientView {
  return {
    client_id: row.clientId,
    client_name: row.name,
    ...parseStoredMetadata(row.metadata),
    roles: row.roles.map((r) => r.roleName).sort(),
    first_party: row.firstParty,
    resource_server: row.resourceServer,
    disabled: row.disabled,
    secrets: row.secrets.map((s) => ({ id: s.id, created_at: s.createdAt.toISOString(), expires_at: s.expiresAt?.toISOString() ?? null })),
    created_at: row.createdAt.toISOString(),
    updated_at: row.updatedAt.toISOString(),
  };
}
