/**
 * Token lifetimes that more than one layer must agree on. The provider's policy issues ID tokens
 * with this TTL and key rotation keeps a replaced key published at least this long, so a
 * verifier never meets a live token whose key is gone.
 */
export const ID_TOKEN_TTL_SECONDS = 3600;
