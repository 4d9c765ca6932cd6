import { z } from 'zod';
import { signingAlg } from '../keys/input.ts';
import { ROLE_NAME } from './roles.ts';

/*
 * The input grammar of the identity domain: the schemas both edges (admin API, CLI) validate
 * with, so the CLI accepts exactly what the API does. The edges add only their own envelopes.
 */

/** Limits of every input: enough for real use, small enough that no input is expensive. */
export const LIMITS = {
  name: 200,
  uri: 2000,
  uris: 20,
  roles: 50,
  scopes: 100,
  scope: 128,
  description: 500,
  password: { min: 8, max: 1024 },
  page: { max: 200, default: 50 },
  cursor: 200,
} as const;

export const unique = <T>(list: T[]) => new Set(list).size === list.length;

const LOOPBACK = new Set(['127.0.0.1', '[::1]', 'localhost']);

function parseUrl(text: string): URL | undefined {
  try {
    return new URL(text);
  } catch {
    return undefined;
  }
}

/**
 * An absolute URL we are willing to send a browser or a fetch to (RFC 9700 §2.1, §4.1):
 * https, or http on a loopback host only; no fragment; no wildcard; no userinfo.
 */
function checkSafeUrl(text: string, ctx: z.core.$RefinementCtx<string>): void {
  const fail = (message: string) => ctx.addIssue({ code: 'custom', message, input: text });
  if (text.includes('*')) return fail('wildcards are not allowed; register each URI exactly');
  if (/^\s|\s$/.test(text)) return fail('must not start or end with whitespace');
  const url = parseUrl(text);
  if (!url) return fail('must be an absolute URI');
  if (url.protocol !== 'https:' && url.protocol !== 'http:') return fail(`scheme ${url.protocol} is not allowed; use https`);
  if (url.protocol === 'http:' && !LOOPBACK.has(url.hostname)) return fail('http is allowed only for loopback hosts (127.0.0.1, ::1, localhost); use https');
  if (text.includes('#')) return fail('must not contain a fragment');
  if (url.username || url.password) return fail('must not contain user information');
}

export const safeUrl = z.string().max(LIMITS.uri).superRefine(checkSafeUrl)
  .meta({ format: 'uri', description: 'Absolute https URI (http only for 127.0.0.1, ::1, localhost); no fragment, wildcard or userinfo; matched exactly' });

/** A resource indicator / audience (RFC 8707 §2): an absolute http(s) URI without a fragment. */
export const resourceIdentifier = z.string().min(1).max(LIMITS.uri).meta({ format: 'uri' }).superRefine((text, ctx) => {
  const url = parseUrl(text);
  if (!url || (url.protocol !== 'https:' && url.protocol !== 'http:')) {
    ctx.addIssue({ code: 'custom', message: 'must be an absolute http(s) URI', input: text });
  } else if (text.includes('#') || text.includes('*')) {
    ctx.addIssue({ code: 'custom', message: 'must not contain a fragment or a wildcard', input: text });
  }
});

/** RFC 6749 §3.3 scope-token: printable ASCII except space, `"` and `\`. */
export const scopeToken = z.string().regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,128}$/, 'must be 1-128 printable ASCII characters without space, " or \\');

/** A space-separated scope string (RFC 6749 §3.3). */
export const scopeString = z.string().max(LIMITS.scopes * (LIMITS.scope + 1))
  .regex(/^[\x21\x23-\x5B\x5D-\x7E]{1,128}( [\x21\x23-\x5B\x5D-\x7E]{1,128})*$/, 'must be scope tokens separated by single spaces');

export const roleName = z.string().regex(ROLE_NAME, `must match ${ROLE_NAME.source}`);

export const roleList = z.array(roleName).max(LIMITS.roles);

/**
 * Control characters and bidirectional overrides (Trojan Source, CVE-2021-42574) let a name
 * shown on a consent page read as something else; line separators break log lines.
 */
const DECEPTIVE = /[\p{Cc}\u061C\u200E\u200F\u202A-\u202E\u2066-\u2069\u2028\u2029]/u;

export const displayName = z.string().trim().min(1).max(LIMITS.name)
  .refine((text) => !DECEPTIVE.test(text), 'must not contain control or bidirectional-override characters');

/** `limit` and `cursor` of every list. */
export const pageQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(LIMITS.page.max).default(LIMITS.page.default),
  cursor: z.string().max(LIMITS.cursor).optional(),
});

export const roleAssignment = z.strictObject({ roles: roleList });

// ---- users
// Case-insensitive: UserService stores it lowercased, so "Alice" and "alice" are one user.
const username = z.string().regex(/^[A-Za-z0-9._@+-]{1,128}$/, 'must be 1-128 characters of A-Z a-z 0-9 . _ @ + -')
  .meta({ description: 'Case-insensitive: stored and shown lowercased; unique regardless of case' });
const email = z.email().max(254);
const password = z.string().min(LIMITS.password.min).max(LIMITS.password.max);

export const userCreate = z.strictObject({
  username,
  email: email.optional(),
  name: displayName.optional(),
  password,
  roles: roleList.refine(unique, 'must not repeat a role').optional(),
  disabled: z.boolean().optional(),
});

export const userPatch = z.strictObject({
  username: username.optional(),
  email: email.nullable().optional(),
  name: displayName.nullable().optional(),
  password: password.optional(),
  disabled: z.boolean().optional(),
});

// ---- roles
const permissions = z.array(scopeToken).max(LIMITS.scopes).refine(unique, 'must not repeat a permission');

export const roleCreate = z.strictObject({
  name: roleName,
  description: z.string().max(LIMITS.description).optional(),
  permissions: permissions.optional(),
  resource: resourceIdentifier.optional()
    .describe('Scope the role to this API (roles per API): it then counts only in access tokens for that API. Absent: a global role.'),
});

export const rolePatch = z.strictObject({
  description: z.string().max(LIMITS.description).optional(),
  permissions: permissions.optional(),
});

// ---- resource servers
const resourceFields = {
  identifier: resourceIdentifier,
  name: z.string().max(LIMITS.name),
  scopes: z.array(scopeToken).max(LIMITS.scopes).refine(unique, 'must not repeat a scope'),
  access_token_ttl: z.number().int().min(30).max(86_400),
  signing_alg: signingAlg,
};

export const resourceCreate = z.strictObject({
  identifier: resourceFields.identifier,
  name: resourceFields.name.optional(),
  scopes: resourceFields.scopes.optional(),
  access_token_ttl: resourceFields.access_token_ttl.optional(),
  signing_alg: resourceFields.signing_alg.optional(),
});

export const resourcePatch = resourceCreate.partial();
