import type { Page } from '../domain/page.ts';
import { Problem } from './problem.ts';

/** What each list sorts by, so that a cursor is checked before it reaches a query. */
const KEY_FORMS = {
  clients: /^[A-Za-z0-9._~-]{1,128}$/,
  roles: /^[a-z][a-z0-9:_-]{0,63}$/,
  users: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  resources: /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/,
  audit: /^[1-9][0-9]{0,18}$/,
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
  if (l !== kind || typeof k !== 'string' || !KEY_FORMS[kind].test(k)) throw invalid;
  return k;
}

/** The `{items, next_cursor}` envelope of a domain page. */
export function pageBody<T>(kind: ListKind, page: Page<T>): { items: T[]; next_cursor: string | null } {
  return { items: page.items, next_cursor: page.next === null ? null : encodeCursor(kind, page.next) };
}
