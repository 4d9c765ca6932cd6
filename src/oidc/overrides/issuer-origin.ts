import type { Provider } from 'oidc-provider';

/**
 * Pins the origin oidc-provider sees on every request to the issuer's. oidc-provider builds
 * each URL it publishes (discovery's endpoints and jwks_uri, form actions, the audience it
 * expects in client assertions) from the request (`OIDCContext#urlFor`, lib/helpers/
 * oidc_context.js: `new URL(path, ctx.href)`), so a `Host` or `X-Forwarded-Host` of the
 * sender's choosing, or an absolute-form request target, would otherwise end up in a
 * cacheable discovery document. Its cookies are `Secure` when `ctx.secure`
 * (lib/helpers/oidc_context.js, lib/models/session.js): with an https issuer they are then
 * Secure even when the TLS terminator in front sends no X-Forwarded-Proto.
 *
 * `Provider` is a Koa application and `app.request` is Koa's documented prototype for every
 * request, so the getters are replaced there, for this Provider only.
 */
export function pinIssuerOrigin(provider: Provider, issuer: string): void {
  const url = new URL(issuer);
  const protocol = url.protocol.slice(0, -1);
  const origin = `${protocol}://${url.host}`;
  Object.defineProperties(provider.request, {
    protocol: { get: () => protocol, configurable: true },
    host: { get: () => url.host, configurable: true },
    hostname: { get: () => url.hostname, configurable: true },
    href: {
      get(this: { originalUrl: string }) {
        // An absolute-form target (`GET http://other.example/… HTTP/1.1`) keeps only its path.
        const target = /^[a-z][a-z0-9+.-]*:\/\//i.test(this.originalUrl) ? pathOf(this.originalUrl) : this.originalUrl;
        return `${origin}${target}`;
      },
      configurable: true,
    },
  });
}

function pathOf(absolute: string): string {
  try {
    const url = new URL(absolute);
    return `${url.pathname}${url.search}`;
  } catch {
    return '/';
  }
}
