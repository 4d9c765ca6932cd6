import type { Page } from '../domain/page.ts';
import { CLIENT_ID, isUuid } from '../identity/ids.ts';
import { ROLE_NAME } from '../identity/roles.ts';
import { Problem } from './problem.ts';

// Ids in a cursor come from the store, which writes UUIDs in lower case; anything else was forged.
const storedUuid = (key: string) => isUuid(key) && key === key.toLowerCase();

const INT8_MAX = 2n ** 63n - 1n;

/** What each list sorts by, so that a cursor is checked before it reaches a query. */
const KEY_FORMS = {
  clients: (key: string) => CLIENT_ID.test(key),
  roles: (key: string) => ROLE_NAME.test(key),
  users: storedUuid,
  resources: storedUuid,
  audit: (key: string) => /^[1-9][0-9]{0,18}$/.test(key) && BigInt(key) <= INT8_MAX,
} as const;

export type ListKind = keyof typeof KEY_FORMS;

/**
 * Cursors are opaque to clients: base64url JSON naming the list and the last key seen. Naming
 * the list keeps a cursor of one list from being replayed against another.
 */
export function encodeCursor(kind: ListKind, key: string): string {
  return Buffer.from(JSON.stringify({ l: kind, k: key })).toString('base64url');
}

export function decodeCursor(kind: ListKind, cursor: string | undefined): string | undefined {
  if (cursor === undefined) return undefined;
  const invalid = new Problem(400, 'cursor is not a cursor of this list; use next_cursor from a previous page', [{ field: 'cursor', message: 'invalid cursor' }]);
  let decoded: unknown;
  try {
    decoded = JSON.parse(Buffer.from(cursor, 'base64url').toString('utf8'));
  } catch {
    throw invalid;
  }
  const { l, k } = (decoded ?? {}) as { l?: unknown; k?: unknown };
  if (l !== kind || typeof k !== 'string' || !KEY_FORMS[kind](k)) throw invalid;
  return k;
}

/** The `{items, next_cursor}` envelope of a domain page. */
export function pageBody<T>(kind: ListKind, page: Page<T>): { items: T[]; next_cursor: string | null } {
  return { items: page.items, next_cursor: page.next === null ? null : encodeCursor(kind, page.next) };
}
