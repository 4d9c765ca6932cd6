import type { Configuration } from 'oidc-provider';

/**
 * KEYWARD_ALLOW_PRIVATE_JWKS_URI: oidc-provider's outgoing requests (a client's jwks_uri) go
 * through its SSRF-guarded undici dispatcher, which `fetchRequest` puts in
 * `options.dispatcher` before calling the `fetch` configuration. Dropping it there lets the
 * request reach private and loopback addresses; its 2.5 s timeout signal stays.
 */
export function privateNetworkFetch(): Pick<Configuration, 'fetch'> {
  return {
    fetch: (url, options) => {
      const { dispatcher: _guarded, ...rest } = options as RequestInit & { dispatcher?: unknown };
      return globalThis.fetch(url, rest);
    },
  };
}
