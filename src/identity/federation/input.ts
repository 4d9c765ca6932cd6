import { z } from 'zod';
import { jwks } from '../clients/input.ts';
import { LIMITS, displayName, safeUrl } from '../input.ts';

/*
 * The input grammar of federated credentials (DESIGN.md "Workloads without secrets"): the admin
 * API and the CLI validate with these schemas.
 */

/** What a subject pattern may hold: printable ASCII without whitespace; `*` is the only wildcard. */
const SUBJECT = /^[\x21-\x7e]{1,512}$/;

/** Exact claim conditions: a claim name and the string, number or boolean it must equal. */
export const claimConditions = z.record(
  z.string().min(1).max(100).regex(/^[\x21-\x7e]+$/, 'a claim name is printable ASCII without whitespace')
    .refine((name) => !['iss', 'sub', 'aud', 'exp', 'nbf', 'iat'].includes(name), 'iss, sub, aud, exp, nbf and iat have their own fields or rules'),
  z.union([z.string().max(LIMITS.uri), z.number().finite(), z.boolean()]),
).refine((claims) => Object.keys(claims).length <= 20, 'at most 20 claim conditions');

/** Algorithms of the keys an issuer may publish inline: asymmetric only (no HS*, no none). */
export const FEDERATION_ALGS = ['RS256', 'RS384', 'RS512', 'PS256', 'PS384', 'PS512', 'ES256', 'ES384', 'ES512', 'EdDSA'] as const;

/** Inline public keys: the client-metadata JWK rules (public members only), with `alg`, if given, asymmetric. */
const inlineJwks = jwks.superRefine((set, ctx) => {
  for (const [index, key] of set.keys.entries()) {
    const alg = (key as Record<string, unknown>).alg;
    if (alg !== undefined && !(FEDERATION_ALGS as readonly unknown[]).includes(alg)) {
      ctx.addIssue({ code: 'custom', path: ['keys', index, 'alg'], message: `alg must be one of ${FEDERATION_ALGS.join(', ')}`, input: alg });
    }
  }
});

export const federatedCredentialCreate = z.strictObject({
  name: displayName,
  issuer: safeUrl.describe('The external issuer exactly as its tokens name it in `iss` (https; http only for loopback)'),
  jwks_uri: safeUrl.optional().describe('Where the issuer publishes its keys; default: jwks_uri of <issuer>/.well-known/openid-configuration'),
  jwks: inlineJwks.optional().describe('The issuer\'s public keys inline (e.g. a Kubernetes cluster whose JWKS needs authentication)'),
  subject: z.string().regex(SUBJECT, 'printable ASCII without whitespace, at most 512 characters').refine((s) => !s.includes('*'), 'a subject is exact; use subject_pattern for a glob').optional()
    .describe('The exact `sub` required'),
  subject_pattern: z.string().regex(SUBJECT, 'printable ASCII without whitespace, at most 512 characters').optional()
    .describe('A glob on `sub`: `*` matches any run of characters within one segment (segments are separated by `/` and `:`)'),
  audience: z.string().min(1).max(LIMITS.uri).optional().describe('The `aud` required; default: Keyward\'s issuer'),
  claims: claimConditions.optional().describe('Claims that must equal these values exactly (pin immutable ids such as repository_id)'),
}).superRefine((input, ctx) => {
  if ((input.subject === undefined) === (input.subject_pattern === undefined)) {
    ctx.addIssue({ code: 'custom', path: ['subject'], message: 'give exactly one of subject and subject_pattern: a rule must pin its subject', input });
  }
  if (input.jwks && input.jwks_uri) ctx.addIssue({ code: 'custom', path: ['jwks_uri'], message: 'give jwks or jwks_uri, not both', input });
  if (input.subject_pattern !== undefined && /^[*:/]*$/.test(input.subject_pattern)) {
    ctx.addIssue({ code: 'custom', path: ['subject_pattern'], message: 'must contain at least one literal character', input });
  }
});

export type FederatedCredentialInput = z.output<typeof federatedCredentialCreate>;

/** The dry run's body: a token as a workload would present it (never logged). */
export const federatedTokenTest = z.strictObject({ token: z.string().min(1).max(16_384) });

/** A credential id as a path parameter. */
export const credentialId = z.uuid();
