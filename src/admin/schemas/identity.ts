import { z } from 'zod';
import { LIMITS, roleName } from '../../identity/input.ts';
import { signingAlg } from '../../keys/input.ts';
import { KEY_STATES } from '../../keys/store.ts';

// ---- users
export const userView = z.object({
  id: z.string(),
  username: z.string(),
  email: z.string().nullable(),
  email_verified: z.boolean(),
  name: z.string().nullable(),
  disabled: z.boolean(),
  roles: z.array(z.string()),
  created_at: z.string(),
  updated_at: z.string(),
});

// ---- roles
export const roleView = z.object({
  name: z.string(),
  description: z.string(),
  permissions: z.array(z.string()),
  resource: z.string().nullable().describe('The API this role is scoped to, or null for a global role.'),
  created_at: z.string(),
  updated_at: z.string(),
});

// ---- resource servers
export const resourceView = z.object({
  id: z.string(),
  identifier: z.string(),
  name: z.string(),
  scopes: z.array(z.string()),
  access_token_ttl: z.number().int(),
  signing_alg: signingAlg,
  created_at: z.string(),
  updated_at: z.string(),
});

// ---- signing keys
/** Mirrors keys/service.ts KeyView; loose because the key service may add fields. */
export const keyView = z.looseObject({
  kid: z.string(),
  alg: signingAlg,
  use: z.literal('sig'),
  state: z.enum(KEY_STATES),
  published: z.boolean(),
  role: z.enum(['current', 'next', 'previous']).optional(),
  created_at: z.string(),
  published_at: z.string(),
  rotatable_at: z.string().optional(),
  consumers: z.object({ seen: z.number().int(), ready: z.number().int() }).optional(),
  activated_at: z.string().optional(),
  retiring_at: z.string().optional(),
  retired_at: z.string().optional(),
  next_state: z.enum(KEY_STATES).optional(),
  next_transition_at: z.string().optional(),
});

export const keyList = z.object({ items: z.array(keyView) });

export const consumerQuery = z.strictObject({
  limit: z.coerce.number().int().min(1).max(1000).default(100),
});

export const consumerReport = z.object({
  published_at: z.string().nullable(),
  seen_since: z.string(),
  total: z.number().int(),
  items: z.array(z.object({ address: z.string(), user_agent: z.string(), first_seen_at: z.string(), last_fetch_at: z.string() })),
});

// ---- audit
export const auditQuery = z.strictObject({
  // A pattern rather than an enum: other modules add event types (see audit/events.ts).
  type: z.string().regex(/^[a-z][a-z0-9_.-]{0,63}$/, 'must be an event type such as admin.change').optional(),
  actor: z.string().min(1).max(LIMITS.name).optional(),
  // Audit events exist only since Keyward does; far dates (year 0, ±275760) only reach the store to fail there.
  since: z.iso.datetime({ offset: true })
    .refine((value) => { const at = Date.parse(value); return Number.isNaN(at) /* the format check says so */ || (at >= 0 && at < Date.UTC(10000, 0, 1)); }, 'must be between 1970-01-01 and 9999-12-31')
    .optional(),
  limit: z.coerce.number().int().min(1).max(LIMITS.page.max).default(LIMITS.page.default),
  cursor: z.string().max(LIMITS.cursor).optional(),
});

export const auditView = z.object({
  id: z.string(),
  at: z.string(),
  type: z.string(),
  actor: z.string().nullable(),
  subject: z.string().nullable(),
  outcome: z.enum(['success', 'failure']),
  ip: z.string().nullable(),
  details: z.record(z.string(), z.unknown()),
});

/** Path parameters that cannot name an entity are a 404, like an unknown one. */
export const uuidParam = z.string().max(64);
export const roleParam = roleName;
