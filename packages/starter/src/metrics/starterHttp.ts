import { createHash, timingSafeEqual } from 'node:crypto';
import { createServer, type IncomingMessage, type ServerResponse } from 'node:http';
import type { AddressInfo } from 'node:net';
import type { Logger } from 'pino';
import { runningVersion } from './buildInfo.ts';
import type { StarterMetrics } from './starterMetrics.ts';

export type CheckResult = { status: 'ok' } | { status: 'failed'; reason: string };

/** A readiness check: resolves when the dependency answers, rejects with why not. */
export type ReadinessCheck = () => Promise<void>;

export interface StarterHttpOptions {
  host: string;
  /** 0 listens on a free port (tests). */
  port: number;
  /** `/readyz` and `/metrics` want `Authorization: Bearer <token>` (or `Token <token>`). */
  token: string;
  metrics: StarterMetrics;
  checks: Record<string, ReadinessCheck>;
  log: Logger;
  /** How long one readiness check may take before it counts as failed. @default 1500 */
  checkTimeoutMs?: number;
}

export interface StarterHttpServer {
  /** e.g. `http://127.0.0.1:9464`. */
  readonly url: string;
  close(): Promise<void>;
}

/**
 * The starter's small HTTP side: `/healthz` (no token: the process answers, with its
 * version), `/readyz` (its checks: NATS, the Docker engine, its heartbeat) and `/metrics` for Prometheus, both behind the token.
 */
export async function startStarterHttp(options: StarterHttpOptions): Promise<StarterHttpServer> {
  const server = createServer((request, response) => {
    answer(request, response, options).catch((error: unknown) => {
      options.log.error({ err: error, path: request.url }, 'metrics request failed');
      if (!response.headersSent) send(response, 500, 'text/plain', 'internal error\n');
      else response.destroy();
    });
  });
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(options.port, options.host, () => resolve());
  });
  const address = server.address() as AddressInfo;
  const host = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  const url = `http://${host}:${address.port}`;
  options.log.info({ url }, 'metrics and health listening');
  return {
    url,
    close: () =>
      new Promise<void>((resolve) => {
        server.close(() => resolve());
        server.closeAllConnections();
      }),
  };
}

async function answer(
  request: IncomingMessage,
  response: ServerResponse,
  options: StarterHttpOptions,
): Promise<void> {
  const path = (request.url ?? '/').split('?')[0];
  if (request.method !== 'GET' && request.method !== 'HEAD') {
    send(response, 405, 'text/plain', 'method not allowed\n');
    return;
  }
  if (path === '/healthz') {
    sendJson(response, 200, { status: 'ok', version: runningVersion() });
    return;
  }
  if (path !== '/readyz' && path !== '/metrics') {
    send(response, 404, 'text/plain', 'not found\n');
    return;
  }
  if (!isAuthorized(request.headers.authorization, options.token)) {
    send(response, 403, 'text/plain', 'forbidden\n');
    return;
  }
  if (path === '/metrics') {
    const exposition = await options.metrics.render();
    send(response, 200, exposition.contentType, exposition.text);
    return;
  }
  const checks = await runChecks(options.checks, options.checkTimeoutMs ?? 1500);
  const ready = Object.values(checks).every((check) => check.status === 'ok');
  sendJson(response, ready ? 200 : 503, { status: ready ? 'ready' : 'not_ready', checks });
}

async function runChecks(
  checks: Record<string, ReadinessCheck>,
  timeoutMs: number,
): Promise<Record<string, CheckResult>> {
  const entries = await Promise.all(
    Object.entries(checks).map(async ([name, check]) => [name, await within(timeoutMs, check)]),
  );
  return Object.fromEntries(entries);
}

async function within(timeoutMs: number, check: ReadinessCheck): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ status: 'failed', reason: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  const checked = check().then(
    (): CheckResult => ({ status: 'ok' }),
    (error: unknown): CheckResult => ({
      status: 'failed',
      reason: (error instanceof Error ? error.message : String(error)).slice(0, 200),
    }),
  );
  try {
    return await Promise.race([checked, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** `Bearer <token>` or `Token <token>`, compared in constant time over digests. */
function isAuthorized(header: string | undefined, token: string): boolean {
  if (typeof header !== 'string' || token === '') return false;
  const match = /^(?:Token|Bearer) (.+)$/.exec(header);
  if (!match) return false;
  return timingSafeEqual(digest(match[1] ?? ''), digest(token));
}

function digest(value: string): Buffer {
  return createHash('sha256').update(value, 'utf8').digest();
}

function sendJson(response: ServerResponse, status: number, body: unknown): void {
  send(response, status, 'application/json; charset=utf-8', JSON.stringify(body));
}

function send(response: ServerResponse, status: number, type: string, body: string): void {
  response.writeHead(status, {
    'content-type': type,
    'content-length': Buffer.byteLength(body),
    'cache-control': 'no-store',
  });
  response.end(body);
}
