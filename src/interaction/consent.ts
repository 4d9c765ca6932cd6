import type { AdapterPayload, Grant, Interaction } from 'oidc-provider';
import type { ConsentItem } from './views.ts';

/** What each OIDC scope means, in words a person can judge. */
const SCOPE_WORDS: Record<string, string> = {
  openid: 'Confirm who you are (your Keyward user ID)',
  profile: 'See your name and username',
  email: 'See your email address',
  roles: 'See the roles assigned to you',
  offline_access: 'Keep access while you are not using it (stay signed in)',
};

/** The consent still missing for an interaction, as oidc-provider's consent prompt reports it. */
export interface MissingConsent {
  oidcScopes: string[];
  oidcClaims: string[];
  /** resource indicator → scopes */
  resourceScopes: Record<string, string[]>;
}

function strings(value: unknown): string[] {
  return Array.isArray(value) ? value.filter((v): v is string => typeof v === 'string') : [];
}

export function missingConsent(interaction: Interaction): MissingConsent {
  const details = interaction.prompt.details as Record<string, unknown>;
  const resources = (details.missingResourceScopes ?? {}) as Record<string, unknown>;
  return {
    oidcScopes: strings(details.missingOIDCScope),
    oidcClaims: strings(details.missingOIDCClaims),
    resourceScopes: Object.fromEntries(Object.entries(resources).map(([k, v]) => [k, strings(v)])),
  };
}

/**
 * The resources the authorization request asks tokens for: its `resource` parameters, or the
 * client's default resource when it names none (src/oidc/resources.ts).
 */
export function requestedResources(interaction: Interaction, defaultResource: string | undefined): string[] {
  const { resource } = interaction.params as { resource?: unknown };
  const named = Array.isArray(resource) ? strings(resource) : typeof resource === 'string' ? [resource] : [];
  return named.length ? named : defaultResource ? [defaultResource] : [];
}

/**
 * The consent page's list: OIDC scopes in plain words, then API scopes naming the API, then
 * every other API a token is asked for even without a scope (RFC 9700 §2.3, issue 10 F1: a
 * token for an API acts as the person there, so the page must say so).
 */
export function describe(missing: MissingConsent, apiName: (identifier: string) => string, resources: readonly string[] = []): ConsentItem[] {
  const items: ConsentItem[] = missing.oidcScopes.map((scope) => ({ what: SCOPE_WORDS[scope] ?? `Use “${scope}”`, code: scope }));
  if (missing.oidcClaims.length) items.push({ what: 'See these details about you', code: missing.oidcClaims.join(', ') });
  for (const [resource, scopes] of Object.entries(missing.resourceScopes)) {
    for (const scope of scopes) items.push({ what: `Use ${apiName(resource)} with permission “${scope}”`, code: `${scope} · ${resource}` });
  }
  for (const resource of resources) {
    if (!missing.resourceScopes[resource]?.length) items.push({ what: `Use ${apiName(resource)} as you`, code: resource });
  }
  return items;
}

/** Adds everything missing to `grant` (the person allowed it, or the client is first-party). */
export function grantMissing(grant: Grant, missing: MissingConsent): void {
  if (missing.oidcScopes.length) grant.addOIDCScope(missing.oidcScopes.join(' '));
  if (missing.oidcClaims.length) grant.addOIDCClaims(missing.oidcClaims);
  for (const [resource, scopes] of Object.entries(missing.resourceScopes)) {
    if (scopes.length) grant.addResourceScope(resource, scopes.join(' '));
  }
}

/** The person's earlier grants to a client (src/store/oidc-grants.ts, an indexed lookup). */
export interface GrantHistory {
  liveGrants(accountId: string, clientId: string, now: Date): Promise<AdapterPayload[]>;
}

/**
 * True when the person already allowed all of `missing` to this client in another live grant
 * (another session or device). oidc-provider remembers consent per session; this extends it
 * to per user and client. The new session still gets its own grant, so signing out on one
 * device does not revoke tokens of another.
 */
export async function previouslyAllowed(grants: GrantHistory, now: Date, accountId: string, clientId: string, missing: MissingConsent): Promise<boolean> {
  const earlier = await grants.liveGrants(accountId, clientId, now);
  const scopes = new Set<string>();
  const claims = new Set<string>();
  const resourceScopes = new Map<string, Set<string>>();
  for (const payload of earlier) {
    const p = payload as { openid?: { scope?: string; claims?: string[] }; resources?: Record<string, string> };
    for (const s of (p.openid?.scope ?? '').split(' ')) if (s) scopes.add(s);
    for (const c of p.openid?.claims ?? []) claims.add(c);
    for (const [resource, granted] of Object.entries(p.resources ?? {})) {
      const set = resourceScopes.get(resource) ?? new Set<string>();
      for (const s of granted.split(' ')) if (s) set.add(s);
      resourceScopes.set(resource, set);
    }
  }
  return missing.oidcScopes.every((s) => scopes.has(s))
    && missing.oidcClaims.every((c) => claims.has(c))
    && Object.entries(missing.resourceScopes).every(([r, list]) => list.every((s) => resourceScopes.get(r)?.has(s)));
}
