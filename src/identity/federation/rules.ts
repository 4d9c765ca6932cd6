/*
 * Matching an external token's verified claims against one federated credential. Pure: no
 * I/O, no clock (the caller passes `now`), so every rule is testable on its own.
 */

/** One stored rule (DESIGN.md "Workloads without secrets"). */
export interface FederatedCredential {
  id: string;
  clientId: string;
  name: string;
  issuer: string;
  jwksUri: string | undefined;
  jwks: { keys: Record<string, unknown>[] } | undefined;
  subject: string | undefined;
  subjectPattern: string | undefined;
  /** The `aud` required; undefined means Keyward's issuer. */
  audience: string | undefined;
  claims: Record<string, string | number | boolean>;
  createdAt: Date;
}

/**
 * Glob match of `subject` against `pattern`: `*` matches any run (also empty) of characters
 * other than `/` and `:`, everything else matches itself. So `repo:acme/*:ref:refs/heads/main`
 * matches every repository of acme on main but never `repo:acme/x:ref:refs/heads/main:extra`
 * nor a repository of another owner, and `system:serviceaccount:prod:*` never matches
 * `system:serviceaccount:prod:a:b`. Linear in the inputs (no backtracking regex).
 */
export function subjectMatches(pattern: string, subject: string): boolean {
  // Split both at the separators; the separators themselves must then line up one by one.
  const split = (text: string) => text.split(/([/:])/);
  const patternParts = split(pattern);
  const subjectParts = split(subject);
  if (patternParts.length !== subjectParts.length) return false;
  return patternParts.every((part, index) => {
    const actual = subjectParts[index]!;
    // Odd positions hold the separators the split kept.
    if (index % 2 === 1) return part === actual;
    return segmentMatches(part, actual);
  });
}

/** Glob within one segment: greedy-free two-pointer match with `*` as the only wildcard. */
function segmentMatches(pattern: string, text: string): boolean {
  let p = 0;
  let t = 0;
  let star = -1;
  let mark = 0;
  while (t < text.length) {
    if (p < pattern.length && pattern[p] !== '*' && pattern[p] === text[t]) {
      p += 1;
      t += 1;
    } else if (p < pattern.length && pattern[p] === '*') {
      star = p;
      mark = t;
      p += 1;
    } else if (star !== -1) {
      p = star + 1;
      mark += 1;
      t = mark;
    } else {
      return false;
    }
  }
  while (p < pattern.length && pattern[p] === '*') p += 1;
  return p === pattern.length;
}

/** Why a credential did not accept a token; `claim` names the condition that failed. */
export type Mismatch =
  | { reason: 'issuer_mismatch' }
  | { reason: 'audience_mismatch'; expected: string }
  | { reason: 'subject_mismatch' }
  | { reason: 'subject_pattern_mismatch' }
  | { reason: 'claim_mismatch'; claim: string };

/**
 * The rule's conditions on verified claims, in a fixed order (issuer, audience, subject,
 * claims); the first that fails is the reason. Signature, lifetime and age are checked before,
 * by the verifier, because they do not depend on the rule.
 */
export function mismatchOf(credential: FederatedCredential, claims: Record<string, unknown>, defaultAudience: string): Mismatch | undefined {
  if (claims.iss !== credential.issuer) return { reason: 'issuer_mismatch' };
  const expected = credential.audience ?? defaultAudience;
  const aud = claims.aud;
  const audiences = Array.isArray(aud) ? aud : [aud];
  if (!audiences.includes(expected)) return { reason: 'audience_mismatch', expected };
  const sub = claims.sub;
  if (typeof sub !== 'string') return credential.subject !== undefined ? { reason: 'subject_mismatch' } : { reason: 'subject_pattern_mismatch' };
  if (credential.subject !== undefined && sub !== credential.subject) return { reason: 'subject_mismatch' };
  if (credential.subjectPattern !== undefined && !subjectMatches(credential.subjectPattern, sub)) return { reason: 'subject_pattern_mismatch' };
  for (const [name, value] of Object.entries(credential.claims)) {
    // Exact and typed: "123" does not equal 123 (GitHub's repository_id is a string claim).
    if (claims[name] !== value) return { reason: 'claim_mismatch', claim: name };
  }
  return undefined;
}

/** A human-readable sentence for a mismatch (dry run, error_description); never quotes the token. */
export function describeMismatch(mismatch: Mismatch): string {
  switch (mismatch.reason) {
    case 'issuer_mismatch': return 'iss is not this credential\'s issuer';
    case 'audience_mismatch': return `aud does not include ${mismatch.expected}`;
    case 'subject_mismatch': return 'sub is not this credential\'s subject';
    case 'subject_pattern_mismatch': return 'sub does not match this credential\'s subject_pattern';
    case 'claim_mismatch': return `claim ${mismatch.claim} does not have the required value`;
  }
}
