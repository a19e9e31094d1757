import fastifyStatic from '@fastify/static';
import type { FastifyInstance, FastifyReply } from 'fastify';
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

/**
 * The built console (packages/service/web, bundled by scripts/build-console.mjs into dist/web
 * when the package is built): from src/console and from dist/console alike, two levels up.
 */
export const CONSOLE_ASSETS = fileURLToPath(new URL('../../dist/web/', import.meta.url));

/**
 * The console's pages may run only their own bundled script, and reach only this origin's API.
 * - script-src 'self': no inline script, no eval; message data is never HTML in the page (the
 *   console sets text only), so a message cannot inject a script even if a bug let it try.
 * - img-src http: https:: a message's HTML is shown in a sandboxed srcdoc iframe, which inherits
 *   this policy; its own stricter meta policy (web/src/message-frame.ts) blocks remote images
 *   unless the user asks for them, so this only lets that choice work.
 * - style-src 'unsafe-inline': for the same iframe, whose mail is styled inline; no script can run there.
 * - frame-ancestors 'none': not framed by another site (clickjacking).
 */
export const CONSOLE_CSP = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self' 'unsafe-inline'",
  "img-src 'self' data: http: https:",
  "connect-src 'self'",
  "frame-src 'self'",
  "base-uri 'none'",
  "form-action 'self'",
  "frame-ancestors 'none'",
].join('; ');

function secure(reply: FastifyReply): void {
  reply
    .header('content-security-policy', CONSOLE_CSP)
    .header('x-content-type-options', 'nosniff')
    .header('x-frame-options', 'DENY')
    .header('referrer-policy', 'no-referrer')
    .header('cross-origin-opener-policy', 'same-origin');
}

/**
 * GET / (the page) and /console/* (its script and style), public like /docs: they hold no data;
 * the page asks for a token and sends it to /v1 as a bearer header. Nothing here runs for an
 * API request: the API routes are unchanged.
 */
export async function registerConsole(app: FastifyInstance, assets = CONSOLE_ASSETS): Promise<void> {
  const built = existsSync(`${assets}/index.html`);
  if (!built) {
    app.get('/', { schema: { hide: true } }, async (_request, reply) =>
      reply.code(503).type('text/plain; charset=utf-8').send('The console is not built: run `npm run build` (it bundles packages/service/web into dist/web). The API is at /v1, its documentation at /docs.\n'),
    );
    return;
  }
  await app.register(fastifyStatic, {
    root: assets,
    prefix: '/console/',
    index: false,
    wildcard: true,
    // The bundle's names do not change between builds of one version: revalidate, never trust a stale one.
    cacheControl: true,
    maxAge: 0,
    setHeaders: (reply) => secure(reply),
  });
  app.get('/', { schema: { hide: true } }, async (_request, reply) => {
    secure(reply);
    return reply.header('cache-control', 'no-cache').sendFile('index.html');
  });
}
