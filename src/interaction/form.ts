import type { Context } from 'koa';
import { decodeStorable, unstorableField } from '../domain/text.ts';

/** Thrown for a body that is not a small urlencoded form. */
export class BadForm extends Error {
  override name = 'BadForm';
}

const MAX_BYTES = 16 * 1024;

/** Reads an `application/x-www-form-urlencoded` body (the only kind our pages send), size-capped. */
export async function readForm(ctx: Context): Promise<Record<string, string>> {
  if (!ctx.is('application/x-www-form-urlencoded')) throw new BadForm('expected a form submission');
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of ctx.req as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > MAX_BYTES) throw new BadForm('form too large');
    chunks.push(chunk);
  }
  // Text the store cannot hold (invalid UTF-8, NUL) is refused, not silently turned into U+FFFD.
  const text = decodeStorable(Buffer.concat(chunks));
  if (text === undefined || unstorableField(text)) throw new BadForm('form is not valid UTF-8 text');
  const fields: Record<string, string> = {};
  // First value wins: a duplicated field must not let a later copy override the first.
  for (const [key, value] of new URLSearchParams(text)) {
    if (!(key in fields)) fields[key] = value;
  }
  return fields;
}
