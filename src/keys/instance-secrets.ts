import { randomBytes } from 'node:crypto';
import type { Sql, SqlQueryable } from '../store/sql.ts';
import { deriveKey, seal, unseal, UnsealError } from './crypto.ts';

/**
 * The secrets of a deployment other than signing keys. Each was once derived from the KEK
 * (HKDF, the name as purpose); they are now stored sealed under it, so replacing the KEK
 * re-encrypts them and no client secret, cookie, CSRF token or audit fingerprint changes.
 */
export const INSTANCE_SECRET_NAMES = ['client-secret-pepper', 'cookies', 'audit-token', 'interaction-csrf', 'dpop-nonce'] as const;
export type InstanceSecretName = (typeof INSTANCE_SECRET_NAMES)[number];
export type InstanceSecrets = Readonly<Record<InstanceSecretName, Buffer>>;

/** The KEK in use and, while it is being replaced, the one before it; named as the operator set them. */
export interface KekRing {
  current: Buffer;
  /** The variable (or file) the current KEK came from, for error messages. */
  currentName: string;
  previous?: Buffer | undefined;
  previousName?: string | undefined;
}

/** What one pass found: ciphertexts already under the current KEK, and those moved to it from the previous one. */
export interface RekeyCounts {
  signingKeys: { current: number; rekeyed: number };
  instanceSecrets: { current: number; rekeyed: number; created: number };
}

/** No configured KEK decrypts some stored ciphertext: start-up stops with this one line. */
export class KekMismatchError extends Error {
  override name = 'KekMismatchError';
}

/** "keyk": serializes re-encryption and first creation of the instance secrets across instances. */
export const KEK_LOCK = 0x6b65796b;

/** Opens a ciphertext with the current KEK, else the previous one; says which one it took. */
export function openSealed(ring: KekRing, sealed: string, aad: string): { plaintext: string; under: 'current' | 'previous' } {
  try {
    return { plaintext: unseal(ring.current, sealed, aad), under: 'current' };
  } catch (error) {
    if (!(error instanceof UnsealError) || !ring.previous) throw error;
  }
  return { plaintext: unseal(ring.previous, sealed, aad), under: 'previous' };
}

interface SealedRow {
  id: string;
  sealed: string;
}

/**
 * At start (and by `keys rekey`): checks that the configured KEKs open every stored ciphertext,
 * re-encrypts under the current KEK what only the previous one opens (when `rekey`), creates
 * the instance secrets a store lacks, and returns their values. One transaction under
 * KEK_LOCK, so two instances starting together neither re-encrypt twice nor disagree on a
 * secret. A missing secret of a store that already holds keys or clients takes the value the
 * KEK derivation gave before secrets were stored (from the KEK its signing keys are sealed
 * under), so existing hashes and cookies keep working; a fresh store gets random values.
 */
export async function prepareSealed(sql: Sql, ring: KekRing, options: { rekey: boolean }): Promise<{ secrets: InstanceSecrets; counts: RekeyCounts }> {
  const locked = await sql.withAdvisoryLock(KEK_LOCK, () => sql.transaction(async (tx) => {
    const keyRows = await tx.query<SealedRow>('SELECT kid AS id, encrypted_jwk AS sealed FROM signing_keys WHERE encrypted_jwk IS NOT NULL ORDER BY kid FOR UPDATE');
    const secretRows = await tx.query<SealedRow>('SELECT name AS id, sealed_value AS sealed FROM instance_secrets ORDER BY name FOR UPDATE');
    const keys = classify(ring, keyRows);
    const secrets = classify(ring, secretRows);
    const unopened = keys.unopened + secrets.unopened;
    if (unopened) throw mismatch(ring, unopened, keyRows.length + secretRows.length);
    if (options.rekey) {
      for (const row of keys.previous) {
        await tx.query('UPDATE signing_keys SET encrypted_jwk = $2 WHERE kid = $1', [row.id, seal(ring.current, row.plaintext, row.id)]);
      }
      for (const row of secrets.previous) {
        await tx.query('UPDATE instance_secrets SET sealed_value = $2, rekeyed_at = now() WHERE name = $1', [row.id, seal(ring.current, row.plaintext, row.id)]);
      }
    }
    const values = new Map([...secrets.current, ...secrets.previous].map((row) => [row.id, row.plaintext]));
    const missing = INSTANCE_SECRET_NAMES.filter((name) => !values.has(name));
    let created = 0;
    if (missing.length) {
      const origin = keys.previous.length && ring.previous ? ring.previous : ring.current;
      const fresh = !keyRows.length && !(await hasRows(tx, 'SELECT 1 FROM signing_keys LIMIT 1')) && !(await hasRows(tx, 'SELECT 1 FROM clients LIMIT 1'));
      for (const name of missing) {
        const value = (fresh ? randomBytes(32) : deriveKey(origin, name)).toString('base64url');
        const inserted = await tx.query('INSERT INTO instance_secrets (name, sealed_value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING RETURNING name', [name, seal(ring.current, value, name)]);
        created += inserted.length;
      }
      // Read back: a process not holding the lock (an older release has none) may have won.
      for (const row of await tx.query<SealedRow>('SELECT name AS id, sealed_value AS sealed FROM instance_secrets WHERE name = ANY($1::text[])', [missing])) {
        values.set(row.id, openSealed(ring, row.sealed, row.id).plaintext);
      }
    }
    const counts: RekeyCounts = {
      signingKeys: { current: keys.current.length, rekeyed: options.rekey ? keys.previous.length : 0 },
      instanceSecrets: { current: secrets.current.length, rekeyed: options.rekey ? secrets.previous.length : 0, created },
    };
    const result = Object.fromEntries(INSTANCE_SECRET_NAMES.map((name) => [name, Buffer.from(values.get(name)!, 'base64url')])) as InstanceSecrets;
    return { secrets: result, counts };
  }));
  if (!locked.acquired) throw new Error('the KEK lock was not acquired');
  return locked.value;
}

interface Opened {
  id: string;
  plaintext: string;
}

function classify(ring: KekRing, rows: SealedRow[]): { current: Opened[]; previous: Opened[]; unopened: number } {
  const out = { current: [] as Opened[], previous: [] as Opened[], unopened: 0 };
  for (const row of rows) {
    try {
      const { plaintext, under } = openSealed(ring, row.sealed, row.id);
      out[under].push({ id: row.id, plaintext });
    } catch (error) {
      if (!(error instanceof UnsealError)) throw error;
      out.unopened += 1;
    }
  }
  return out;
}

async function hasRows(tx: SqlQueryable, query: string): Promise<boolean> {
  return (await tx.query(query)).length > 0;
}

function mismatch(ring: KekRing, unopened: number, total: number): KekMismatchError {
  const what = `${unopened} of the ${total} stored private keys and instance secrets`;
  if (ring.previous) {
    return new KekMismatchError(`invalid ${ring.currentName}: neither this key-encryption key nor ${ring.previousName ?? 'KEYWARD_KEK_PREVIOUS'} decrypts ${what}`);
  }
  return new KekMismatchError(`invalid ${ring.currentName}: this key-encryption key does not decrypt ${what}; when replacing the KEK, set KEYWARD_KEK_PREVIOUS to the one they were encrypted with`);
}
