import { z } from 'zod';

/** The `{items, next_cursor}` envelope of every list. */
export function pageOf<T extends z.ZodType>(item: T) {
  return z.object({ items: z.array(item), next_cursor: z.string().nullable() });
}
