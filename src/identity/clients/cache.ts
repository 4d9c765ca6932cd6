import type { PrismaClient } from '../../store/store.ts';
import type { ChangeFeed } from '../../store/changes.ts';
import { include, toRecord, type ClientRecord, type ClientRow } from './rows.ts';

/**
 * Client records for the token endpoint's hot path, each kept until the change feed names its
 * client (or any role, since a record carries its roles). Unknown ids are cached as absent too.
 */
export class ClientRecordCache {
  readonly #cache = new Map<string, Promise<ClientRecord | undefined>>();

  constructor(
    private readonly prisma: PrismaClient,
    changes: ChangeFeed,
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

  get(clientId: string): Promise<ClientRecord | undefined> {
    let pending = this.#cache.get(clientId);
    if (!pending) {
      pending = this.prisma.client.findUnique({ where: { clientId }, include })
        .then((row) => (row ? toRecord(row as ClientRow) : undefined));
      this.#cache.set(clientId, pending);
      pending.catch(() => this.#cache.delete(clientId));
    }
    return pending;
  }
}
