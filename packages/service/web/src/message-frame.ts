/**
 * A message's HTML as the document of a sandboxed iframe (srcdoc, `sandbox` with no token):
 * - no script runs (no allow-scripts), so onerror handlers, javascript: links and <script> do
 *   nothing; no form is sent, no popup or top-level navigation happens; its origin is opaque,
 *   so it cannot read the console's token even in theory;
 * - <meta http-equiv="refresh"> does nothing in a sandbox without allow-scripts (the "sandboxed
 *   automatic features" flag);
 * - the policy below, first in the document (a policy only ever adds restrictions, so one the
 *   mail brings cannot loosen it): nothing is fetched (default-src 'none') except inline styles
 *   and data: images, and remote images only when the reader asks for them. Remote images are
 *   how senders see that a mail was opened; off by default.
 * The document also inherits the console's own policy (srcdoc does), which forbids every script.
 */
export function frameDocument(html: string, remoteImages: boolean): string {
  const images = remoteImages ? "img-src data: http: https:" : 'img-src data:';
  const policy = `default-src 'none'; ${images}; style-src 'unsafe-inline'; font-src data:; form-action 'none'; base-uri 'none'`;
  return `<!doctype html><html><head><meta charset="utf-8"><meta http-equiv="Content-Security-Policy" content="${policy}"><meta name="referrer" content="no-referrer"></head><body>${html}</body></html>`;
}
