import { readFile } from 'node:fs/promises';
import type { FastifyInstance } from 'fastify';

/** The dashboard's files: its whole interface, no build step, nothing from elsewhere. */
const pages = [
  { path: '/admin/dashboard/', file: 'index.html', type: 'text/html; charset=utf-8' },
  {
    path: '/admin/dashboard/dashboard.css',
    file: 'dashboard.css',
    type: 'text/css; charset=utf-8',
  },
  {
    path: '/admin/dashboard/dashboard.js',
    file: 'dashboard.js',
    type: 'text/javascript; charset=utf-8',
  },
] as const;

/**
 * Scripts and styles only from this page's own files, data only from this scheduler, no
 * form posts, no frames: a script name or an output that slips past the escaping still
 * cannot run code or send the token anywhere.
 */
const contentSecurityPolicy = [
  "default-src 'none'",
  "script-src 'self'",
  "style-src 'self'",
  "img-src 'self' data:",
  "connect-src 'self'",
  "base-uri 'none'",
  "form-action 'none'",
  "frame-ancestors 'none'",
].join('; ');

/**
 * `GET /admin/dashboard/`: the operators' dashboard. The page itself holds no data and
 * needs no token (a browser cannot send the Authorization header on navigation); it asks
 * for the token, keeps it in the tab's sessionStorage, and sends it with every call to the
 * admin endpoints, which check it as for any client. The token never appears in a URL.
 */
export async function dashboardPages(app: FastifyInstance): Promise<void> {
  for (const page of pages) {
    const body = await readFile(new URL(`./static/${page.file}`, import.meta.url));
    app.get(page.path, async (_request, reply) =>
      reply
        .type(page.type)
        .header('Content-Security-Policy', contentSecurityPolicy)
        .header('X-Content-Type-Options', 'nosniff')
        .header('Referrer-Policy', 'no-referrer')
        .header('Cache-Control', 'no-store')
        .send(body),
    );
  }
}
