import { z } from 'zod';
import { SIGNING_ALGS } from './algorithms.ts';

export const signingAlg = z.enum(SIGNING_ALGS);

/** A rotation request, from the admin API or the CLI. */
export const keyRotate = z.strictObject({
  alg: signingAlg.optional(),
  emergency: z.boolean().optional(),
});
