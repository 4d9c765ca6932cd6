import { createHash } from 'node:crypto';
import type { KoaContextWithOIDC } from 'oidc-provider';

/** What a page oidc-provider rendered itself needs from a Content-Security-Policy. */
export interface ProviderPage {
  /**
   * Where a submission may end up: its forms' actions (HTML entities decoded) and the
   * redirect_uri of the authorization request, which a submission ends in after redirects
   * (the end-session form of an account switch returns through resume to the client).
   */
  formTargets: string[];
  /** `'sha256-…'` sources of its inline scripts. */
  scriptHashes: string[];
}

/** Sets the page headers of an HTML page oidc-provider rendered (see pageOf). */
export type PageHeaders = (ctx: KoaContextWithOIDC, page: ProviderPage) => void;

const ENTITIES: Record<string, string> = { '&amp;': '&', '&quot;': '"', '&#39;': '\'', '&#x27;': '\'', '&lt;': '<', '&gt;': '>' };
const decode = (text: string): string => text.replace(/&(?:amp|quot|#39|#x27|lt|gt);/g, (entity) => ENTITIES[entity]!);

/**
 * An HTML page oidc-provider rendered without any of Keyward's hooks: the `form_post`
 * response mode (lib/response_modes/form_post.js), also used by resume
 * (lib/actions/authorization/resume.js) to end the previous session on an account switch.
 * Pages Keyward renders through its hooks already carry a Content-Security-Policy, so an HTML
 * answer without one is such a page; its inline script and form action are read from the body.
 */
export function pageOf(ctx: KoaContextWithOIDC): ProviderPage | undefined {
  if (typeof ctx.body !== 'string' || !ctx.response.is('html') || ctx.response.get('content-security-policy')) return undefined;
  const html = ctx.body;
  return {
    formTargets: [
      ...[...html.matchAll(/<form\b[^>]*\baction="([^"]*)"/g)].map((match) => decode(match[1]!)),
      ...[redirectUriOf(ctx)].filter((uri): uri is string => typeof uri === 'string'),
    ],
    scriptHashes: [...html.matchAll(/<script>([\s\S]*?)<\/script>/g)]
      .map((match) => `'sha256-${createHash('sha256').update(match[1]!).digest('base64')}'`),
  };
}

/** The authorization request's redirect_uri: its parameters, or on resume the interaction's. */
function redirectUriOf(ctx: KoaContextWithOIDC): unknown {
  const interaction = ctx.oidc.entities.Interaction as { params?: { redirect_uri?: unknown } } | undefined;
  return ctx.oidc.params?.redirect_uri ?? interaction?.params?.redirect_uri;
}
