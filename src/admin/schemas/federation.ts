import { z } from 'zod';

export const federatedCredentialView = z.object({
  id: z.string(),
  client_id: z.string(),
  name: z.string(),
  issuer: z.string(),
  jwks_uri: z.string().optional(),
  jwks: z.object({ keys: z.array(z.record(z.string(), z.unknown())) }).optional(),
  subject: z.string().optional(),
  subject_pattern: z.string().optional(),
  audience: z.string().optional(),
  claims: z.record(z.string(), z.union([z.string(), z.number(), z.boolean()])).optional(),
  created_at: z.string(),
});

export const federatedCredentialList = z.object({ items: z.array(federatedCredentialView) });

export const federationDryRun = z.object({
  matched: z.object({ client_id: z.string(), credential_id: z.string() }).nullable()
    .describe('The credential that accepts the token (the first in creation order), or null'),
  reasons: z.array(z.object({
    client_id: z.string(),
    credential_id: z.string(),
    reason: z.string().describe('malformed, alg_not_allowed, issuer_mismatch, jwks_unavailable, unknown_kid, signature_invalid, expired, not_yet_valid, iat_missing, too_old, audience_mismatch, subject_mismatch, subject_pattern_mismatch, claim_mismatch'),
    detail: z.string(),
  })).describe('Why each candidate before the match (or every candidate) did not accept the token'),
});
