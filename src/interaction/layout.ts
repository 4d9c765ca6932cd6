/** Escapes text for HTML element content and double-quoted attribute values. */
export function escapeHtml(value: string | number | null | undefined): string {
  return String(value ?? '').replace(/[&<>"']/g, (c) => `&#${c.charCodeAt(0)};`);
}

/**
 * The one stylesheet of every page, inline (no external assets) and allowed by its hash in
 * the CSP (see headers.ts). System fonts; light and dark; works from 320 px up.
 */
export const STYLESHEET = `
:root{--bg:#f3f4f8;--card:#fff;--text:#1b1e2b;--muted:#5b6072;--line:#d9dce6;--accent:#3b4fd8;--accent-hover:#2f40b5;
--accent-text:#fff;--danger-bg:#fdecec;--danger-text:#9b1c1c;--danger-line:#f3b4b4;--focus:#f5a524;color-scheme:light dark}
@media (prefers-color-scheme:dark){:root{--bg:#10121a;--card:#1a1d29;--text:#eceef6;--muted:#a3a8bb;--line:#333849;
--accent:#7c8cff;--accent-hover:#98a5ff;--accent-text:#10121a;--danger-bg:#3a1c20;--danger-text:#ffb4b4;--danger-line:#6b2a30}}
*{box-sizing:border-box}
html{font-size:100%}
body{margin:0;min-height:100vh;display:flex;flex-direction:column;align-items:center;justify-content:center;
padding:24px 16px;background:var(--bg);color:var(--text);
font:16px/1.5 system-ui,-apple-system,"Segoe UI",Roboto,"Helvetica Neue",Arial,sans-serif}
main{width:100%;max-width:400px}
.card{background:var(--card);border:1px solid var(--line);border-radius:16px;padding:32px 28px;
box-shadow:0 1px 2px rgba(16,18,26,.06),0 8px 24px rgba(16,18,26,.08)}
.brand{display:flex;align-items:center;gap:10px;margin:0 0 24px;font-weight:650;font-size:1.05rem;letter-spacing:.01em}
.brand svg{width:32px;height:32px;flex:none}
h1{font-size:1.5rem;line-height:1.25;margin:0 0 6px;font-weight:650}
.lead{margin:0 0 24px;color:var(--muted)}
.lead strong{color:var(--text)}
label{display:block;font-weight:600;font-size:.925rem;margin:0 0 6px}
.field{margin:0 0 18px}
input[type=text],input[type=password]{width:100%;font:inherit;color:inherit;background:transparent;padding:11px 12px;
border:1px solid var(--line);border-radius:10px;outline:none;transition:border-color .15s,box-shadow .15s}
input[type=text]:focus,input[type=password]:focus{border-color:var(--accent);box-shadow:0 0 0 3px color-mix(in srgb,var(--accent) 35%,transparent)}
input[aria-invalid=true]{border-color:var(--danger-text)}
button{display:block;width:100%;font:inherit;font-weight:600;padding:11px 16px;border-radius:10px;cursor:pointer;
border:1px solid var(--accent);background:var(--accent);color:var(--accent-text);transition:background .15s}
button:hover{background:var(--accent-hover);border-color:var(--accent-hover)}
button.secondary{background:transparent;color:var(--text);border-color:var(--line)}
button.secondary:hover{background:color-mix(in srgb,var(--line) 40%,transparent)}
button:focus-visible,a:focus-visible,summary:focus-visible{outline:3px solid var(--focus);outline-offset:2px}
.actions{display:flex;flex-direction:column;gap:10px;margin-top:24px}
@media (min-width:420px){.actions.pair{flex-direction:row-reverse}.actions.pair button{flex:1}}
.alert{margin:0 0 20px;padding:12px 14px;border-radius:10px;background:var(--danger-bg);color:var(--danger-text);
border:1px solid var(--danger-line);font-size:.95rem}
.scopes{list-style:none;margin:0;padding:0;border:1px solid var(--line);border-radius:12px}
.scopes li{padding:12px 14px;border-top:1px solid var(--line)}
.scopes li:first-child{border-top:0}
.scopes .what{display:block;font-weight:600}
.scopes .code{display:block;color:var(--muted);font-size:.85rem;font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace}
.muted{color:var(--muted);font-size:.9rem}
details{margin-top:16px;color:var(--muted);font-size:.9rem}
details code{word-break:break-word}
input.user-code{font-family:ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;font-size:1.35rem;letter-spacing:.12em;
text-align:center;text-transform:uppercase}
input.user-code::placeholder{letter-spacing:.12em;opacity:.45}
.user-code-shown{margin:0 0 16px;padding:14px;border:1px dashed var(--line);border-radius:12px;text-align:center;
font:600 1.6rem/1.2 ui-monospace,SFMono-Regular,Menlo,Consolas,monospace;letter-spacing:.14em}
footer{margin-top:20px;text-align:center;color:var(--muted);font-size:.8rem}
`.replace(/\n/g, '');

/** Keyward's mark, inline so the page needs no image request. Decorative: hidden from assistive tech. */
const LOGO = `<svg viewBox="0 0 32 32" aria-hidden="true" focusable="false"><rect width="32" height="32" rx="8" fill="#3b4fd8"/>`
  + `<circle cx="12" cy="16" r="5.5" fill="none" stroke="#fff" stroke-width="2.5"/>`
  + `<path d="M17.5 16H26M22.5 16v4M25.5 16v3" fill="none" stroke="#fff" stroke-width="2.5" stroke-linecap="round"/></svg>`;

/** A complete HTML document around `content` (already escaped by the caller). */
export function page(title: string, content: string): string {
  return `<!DOCTYPE html><html lang="en"><head><meta charset="utf-8">`
    + `<meta name="viewport" content="width=device-width,initial-scale=1">`
    + `<meta name="robots" content="noindex,nofollow"><title>${escapeHtml(title)} · Keyward</title>`
    + `<style>${STYLESHEET}</style></head><body><main><div class="card">`
    + `<p class="brand">${LOGO}<span>Keyward</span></p>${content}</div>`
    + `<footer>Protected by Keyward</footer></main></body></html>`;
}
