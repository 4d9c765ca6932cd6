/**
 * Text PostgreSQL can store. It refuses U+0000 in `text` and `jsonb` (SQLSTATE 22021 / 22P05),
 * and every value reaching it was once bytes on the wire: invalid UTF-8 must be refused where
 * the bytes arrive (decoding would silently turn it into U+FFFD), NUL wherever it appears.
 */

const fatalUtf8 = new TextDecoder('utf-8', { fatal: true });
const LONE_SURROGATE = /[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g;
/** The same without the global flag: `test` keeps no state between calls. */
const HAS_LONE_SURROGATE = new RegExp(LONE_SURROGATE.source);
/** ASCII without NUL: storable as it is, the common case on every request (checked first). */
// eslint-disable-next-line no-control-regex -- NUL is exactly what this range leaves out
const PLAIN_ASCII = /^[\x01-\x7f]*$/;

/** The bytes as a string, or undefined when they are not valid UTF-8 or decode to a NUL. */
export function decodeStorable(bytes: Uint8Array): string | undefined {
  let text: string;
  try {
    text = fatalUtf8.decode(bytes);
  } catch {
    return undefined;
  }
  return text.includes('\0') ? undefined : text;
}

/** A string PostgreSQL stores as given: no NUL and no lone surrogate (it would become U+FFFD). */
export function isStorable(text: string): boolean {
  if (PLAIN_ASCII.test(text)) return true;
  return !text.includes('\0') && !HAS_LONE_SURROGATE.test(text);
}

/**
 * Percent-decodes one component of a URL query or urlencoded form (`+` is a space) to its bytes
 * and checks them; undefined when they are not storable text.
 */
export function decodeComponent(component: string): string | undefined {
  const plus = component.replace(/\+/g, ' ');
  if (!plus.includes('%')) return isStorable(plus) ? plus : undefined;
  if (PLAIN_ASCII.test(plus)) {
    // Well-formed escapes of valid UTF-8 decode here exactly as below; anything else (a stray
    // `%`, invalid UTF-8) makes decodeURIComponent throw and takes the byte-by-byte path.
    try {
      const decoded = decodeURIComponent(plus);
      return decoded.includes('\0') ? undefined : decoded;
    } catch {
      // fall through
    }
  }
  const bytes: number[] = [];
  for (let i = 0; i < plus.length; i++) {
    const c = plus.charCodeAt(i);
    if (c === 0x25 && /^[0-9a-fA-F]{2}$/.test(plus.slice(i + 1, i + 3))) {
      bytes.push(parseInt(plus.slice(i + 1, i + 3), 16));
      i += 2;
    } else if (c < 0x80) {
      bytes.push(c);
    } else {
      bytes.push(...Buffer.from(plus[i]!, 'utf8'));
    }
  }
  return decodeStorable(Uint8Array.from(bytes));
}

/** Names the first pair of an urlencoded string whose name or value is not storable text. */
export function unstorableField(encoded: string): string | undefined {
  if (!encoded) return undefined;
  for (const pair of encoded.split('&')) {
    if (!pair) continue;
    const eq = pair.indexOf('=');
    const name = eq < 0 ? pair : pair.slice(0, eq);
    const decodedName = decodeComponent(name);
    if (decodedName === undefined) return '(parameter name)';
    if (eq >= 0 && decodeComponent(pair.slice(eq + 1)) === undefined) return decodedName.slice(0, 64);
  }
  return undefined;
}

/** Makes any string storable and bounded: NULs and lone surrogates become U+FFFD, then cut to `max`. */
export function storableText(text: string, max: number): string {
  if (PLAIN_ASCII.test(text)) return text.length > max ? `${text.slice(0, max)}…` : text;
  const clean = text.replace(LONE_SURROGATE, '\uFFFD').replace(/\0/g, '\uFFFD');
  return clean.length > max ? `${clean.slice(0, max)}…` : clean;
}
