import { calculateJwkThumbprint, exportJWK, generateKeyPair, type JWK } from 'jose';
import type { PrismaClient } from '../store/store.ts';
import type { SigningAlg } from './algorithms.ts';
import { seal } from './crypto.ts';
import { openSealed, type KekRing } from './instance-secrets.ts';
import { storedJwk } from './jwk.ts';

export const KEY_STATES = ['staged', 'active', 'retiring', 'retired'] as const;
export type KeyState = (typeof KEY_STATES)[number];

/** A key row as the rest of Keyward sees it; the private part only when asked for. */
export interface SigningKeyRecord {
  kid: string;
  alg: SigningAlg;
  use: 'sig';
  state: KeyState;
  publicJwk: JWK;
  createdAt: Date;
  activatedAt: Date | null;
  retiringAt: Date | null;
  retiredAt: Date | null;
}

export interface PrivateSigningKey extends SigningKeyRecord {
  privateJwk: JWK;
}

type Row = Awaited<ReturnType<PrismaClient['signingKey']['findMany']>>[number];

function toRecord(row: Row): SigningKeyRecord {
  return {
    kid: row.kid,
    alg: row.alg as SigningAlg,
    use: 'sig',
    state: row.state as KeyState,
    publicJwk: storedJwk.parse(row.publicJwk),
    createdAt: row.createdAt,
    activatedAt: row.activatedAt,
    retiringAt: row.retiringAt,
    retiredAt: row.retiredAt,
  };
}

/**
 * Persistence of signing keys with the private JWK encrypted at rest (AES-256-GCM under the
 * KEK, the kid bound as AAD). Knows nothing of schedules: see lifecycle.ts.
 */
export class KeyStore {
  constructor(
    private readonly prisma: PrismaClient,
    /** Seals under the current KEK; opens with the previous one too (rows not yet re-encrypted). */
    private readonly kek: KekRing,
  ) {}

  async list(): Promise<SigningKeyRecord[]> {
    const rows = await this.prisma.signingKey.findMany({ orderBy: [{ createdAt: 'asc' }, { kid: 'asc' }] });
    return rows.map(toRecord);
  }

  /** Keys whose private part is still held (staged, active, retiring), decrypted. */
  async loadUsable(): Promise<PrivateSigningKey[]> {
    const rows = await this.prisma.signingKey.findMany({
      where: { state: { in: ['staged', 'active', 'retiring'] } },
      orderBy: [{ createdAt: 'asc' }, { kid: 'asc' }],
    });
    return rows.map((row) => {
      if (row.encryptedJwk === null) throw new Error(`signing key ${row.kid} is ${row.state} but has no private part`);
      return { ...toRecord(row), privateJwk: storedJwk.parse(JSON.parse(openSealed(this.kek, row.encryptedJwk, row.kid).plaintext)) };
    });
  }

  /**
   * A cheap summary of the published key set (kid and state of every live key): two instances
   * with the same fingerprint publish the same JWKS and sign with the same keys.
   */
  async fingerprint(): Promise<string> {
    const rows = await this.prisma.signingKey.findMany({
      where: { state: { in: ['staged', 'active', 'retiring'] } },
      select: { kid: true, state: true },
      orderBy: { kid: 'asc' },
    });
    return rows.map((r) => `${r.kid}:${r.state}`).join(',');
  }

  /**
   * Generates a key pair and stores it in `state`; returns the public record. The creation time
   * is read from `now` once the pair exists (RSA generation can take a second under load), so a
   * staged key's lead is not counted from before it could be published.
   */
  async create(alg: SigningAlg, state: KeyState, now: () => Date): Promise<SigningKeyRecord> {
    const { publicKey, privateKey } = await generateKeyPair(alg, {
      extractable: true,
      ...(alg === 'RS256' ? { modulusLength: 2048 } : {}),
      ...(alg === 'EdDSA' ? { crv: 'Ed25519' } : {}),
    });
    const publicJwk = await exportJWK(publicKey);
    const kid = await calculateJwkThumbprint(publicJwk);
    const pub: JWK = { ...publicJwk, kid, alg, use: 'sig' };
    const priv: JWK = { ...(await exportJWK(privateKey)), kid, alg, use: 'sig' };
    const at = now();
    const row = await this.prisma.signingKey.create({
      data: {
        kid,
        alg,
        use: 'sig',
        state,
        publicJwk: pub,
        encryptedJwk: seal(this.kek.current, JSON.stringify(priv), kid),
        createdAt: at,
        activatedAt: state === 'active' ? at : null,
      },
    });
    return toRecord(row);
  }

  /** Moves a key to `state`, stamping the transition; retiring a key deletes its private part. */
  async transition(kid: string, state: KeyState, at: Date): Promise<SigningKeyRecord> {
    const row = await this.prisma.signingKey.update({
      where: { kid },
      data: {
        state,
        ...(state === 'active' ? { activatedAt: at } : {}),
        ...(state === 'retiring' ? { retiringAt: at } : {}),
        ...(state === 'retired' ? { retiredAt: at, encryptedJwk: null } : {}),
      },
    });
    return toRecord(row);
  }
}
