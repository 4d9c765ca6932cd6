/**
 * Keyset pagination shared by the list methods of the domain services. `after` is the sort
 * key of the last item already seen; the admin edge wraps it into an opaque cursor.
 */
export interface PageRequest {
  limit: number;
  after?: string | undefined;
}

export interface Page<T> {
  items: T[];
  /** The sort key to continue after, or null on the last page. */
  next: string | null;
}

/** Cuts a `limit + 1` fetch into a page: the extra row only proves there is a next page. */
export function pageOf<R, T>(rows: R[], limit: number, key: (row: R) => string, view: (row: R) => T): Page<T> {
  const more = rows.length > limit;
  const kept = more ? rows.slice(0, limit) : rows;
  return { items: kept.map(view), next: more && kept.length ? key(kept[kept.length - 1]!) : null };
}
