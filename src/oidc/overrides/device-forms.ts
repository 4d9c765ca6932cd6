/**
 * The user-code input form oidc-provider hands `features.deviceFlow.userCodeInputSource`
 * (lib/helpers/user_code_form.js `input`): `<form … action="…">` with a hidden
 * `<input type="hidden" name="xsrf" value="…"/>`. Keyward renders its own form (its own
 * label, no inline `onfocus` handler that the page's CSP would block), so it reads the two
 * values it must post back. Asserted by test/oidc/provider-contract.test.ts.
 */
export interface DeviceFormFields {
  action: string;
  xsrf: string;
}

const ENTITIES: Record<string, string> = { '&amp;': '&', '&quot;': '"', '&#39;': '\'', '&#x27;': '\'', '&lt;': '<', '&gt;': '>' };
const decode = (text: string): string => text.replace(/&(?:amp|quot|#39|#x27|lt|gt);/g, (entity) => ENTITIES[entity]!);

/** The action and xsrf value of oidc-provider's user-code form; undefined if it no longer has that shape. */
export function deviceFormFields(form: string): DeviceFormFields | undefined {
  const action = /<form\b[^>]*\baction="([^"]*)"/.exec(form)?.[1];
  const xsrf = /<input\b[^>]*\bname="xsrf"[^>]*\bvalue="([^"]*)"/.exec(form)?.[1];
  if (action === undefined || xsrf === undefined) return undefined;
  return { action: decode(action), xsrf: decode(xsrf) };
}
