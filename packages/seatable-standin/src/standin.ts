import { randomBytes, timingSafeEqual } from 'node:crypto';
import {
  createServer,
  type IncomingHttpHeaders,
  type IncomingMessage,
  type Server,
  type ServerResponse,
} from 'node:http';
import type { AddressInfo } from 'node:net';
import { FaultPlan, type StandinFault, type StandinRoute } from './faults.ts';
import {
  type ExceededNotification,
  errorReply,
  handleRoute,
  matchRoute,
  type RouteContext,
  requiresSecret,
  type StandinReply,
} from './routes.ts';
import {
  type IssuedScriptFile,
  type LimitOwner,
  ScriptCatalog,
  type StandinScript,
} from './scriptCatalog.ts';

export interface SeaTableStandinOptions {
  /** @default '127.0.0.1' */
  host?: string;
  /** 0 picks a free port. @default 0 */
  port?: number;
  /** The shared secret (`PYTHON_SCHEDULER_AUTH_TOKEN`). @default a random one, see `secret` */
  secret?: string;
  /** Scripts the bases hold from the start. */
  scripts?: StandinScript[];
  /**
   * Scheme, host and port put into `script_url`, for installs where the public file server
   * address differs from the one a starter reaches. @default the stand-in's own `url`
   */
  scriptUrlBase?: string;
  /** Called once per request after it was recorded (for logging). */
  onRequest?: (request: RecordedRequest) => void;
}

/** One request as it reached the stand-in. */
export interface RecordedRequest {
  method: string;
  /** The raw path, still percent-encoded, without the query. */
  path: string;
  query: Record<string, string>;
  headers: IncomingHttpHeaders;
  body: string;
  time: Date;
  /** The route it matched, or null for an unknown path. */
  route: StandinRoute | null;
  /** The status it was answered with; null when it was dropped or is still pending. */
  status: number | null;
}

export interface SeaTableStandin {
  /** Where it listens, without a trailing slash: the `SEATABLE_SERVER_URL`. */
  readonly url: string;
  readonly secret: string;
  /** Every request, in order of arrival. */
  readonly requests: RecordedRequest[];
  /** The bodies POSTed to `scripts-exceeded-notifications`. */
  readonly notifications: ExceededNotification[];
  /** How many times a script was downloaded: through one link (run key), or by script name. */
  fetchCount(runKeyOrScriptName: string): number;
  /** The links `task/file/` handed out, oldest first. */
  issuedFiles(): IssuedScriptFile[];
  setScript(script: StandinScript): void;
  removeScript(dtableUuid: string, scriptName: string): boolean;
  setRunningLimit(owner: LimitOwner, limit: number): void;
  /** Makes the next request(s) on a route misbehave. */
  failNext(route: StandinRoute, fault: StandinFault): void;
  stop(): Promise<void>;
}

const maxBodyBytes = 8 * 1024 * 1024;
const cutShortJson = '{"script_url": "http://';

/** Starts a fake SeaTable server on loopback. */
export async function startSeaTableStandin(
  options: SeaTableStandinOptions = {},
): Promise<SeaTableStandin> {
  const catalog = new ScriptCatalog();
  for (const script of options.scripts ?? []) catalog.setScript(script);
  const faults = new FaultPlan();
  const requests: RecordedRequest[] = [];
  const notifications: ExceededNotification[] = [];
  const secret = options.secret ?? randomBytes(24).toString('hex');
  const expectedAuthorization = Buffer.from(`Token ${secret}`);
  const timers = new Set<NodeJS.Timeout>();
  const context: RouteContext = { catalog, fileUrlBase: '', notifications };

  const server = createServer((request, response) => {
    readBody(request)
      .then((body) => serve(request, response, body))
      .catch(() => response.destroy());
  });

  async function serve(request: IncomingMessage, response: ServerResponse, body: Buffer | null) {
    const [rawPath = '/', rawQuery = ''] = (request.url ?? '/').split('?', 2);
    const query = new URLSearchParams(rawQuery);
    const match = matchRoute(rawPath);
    const recorded: RecordedRequest = {
      method: request.method ?? 'GET',
      path: rawPath,
      query: Object.fromEntries(query),
      headers: request.headers,
      body: body?.toString('utf8') ?? '',
      time: new Date(),
      route: match?.route ?? null,
      status: null,
    };
    requests.push(recorded);
    options.onRequest?.(recorded);

    const reply = (answer: StandinReply) => {
      recorded.status = answer.status;
      writeReply(response, answer);
    };
    if (body === null) return reply(errorReply(413, 'Request body too large.'));
    if (!match) return reply(errorReply(404, 'Not found.'));
    if (recorded.method !== match.method) return reply(errorReply(405, 'Method not allowed.'));

    const fault = faults.take(match.route);
    if (fault?.delayMs) await sleep(fault.delayMs, timers);
    if (fault?.drop) return response.destroy();
    if (fault?.status) return reply(errorReply(fault.status, 'Injected failure.'));

    if (requiresSecret(match.route) && !authorized(request.headers.authorization)) {
      return reply(errorReply(403, 'Permission denied.'));
    }
    const answer = handleRoute(match, query, recorded.body, context);
    if (fault?.badJson) return reply({ ...answer, status: 200, body: cutShortJson });
    reply(answer);
  }

  function authorized(header: string | undefined): boolean {
    const given = Buffer.from(header ?? '');
    return given.length === expectedAuthorization.length
      ? timingSafeEqual(given, expectedAuthorization)
      : false;
  }

  const url = await listen(server, options.host ?? '127.0.0.1', options.port ?? 0);
  context.fileUrlBase = (options.scriptUrlBase ?? url).replace(/\/+$/, '');

  return {
    url,
    secret,
    requests,
    notifications,
    fetchCount: (runKeyOrScriptName) => catalog.fetchCount(runKeyOrScriptName),
    issuedFiles: () => catalog.issuedFiles(),
    setScript: (script) => catalog.setScript(script),
    removeScript: (dtableUuid, scriptName) => catalog.removeScript(dtableUuid, scriptName),
    setRunningLimit: (owner, limit) => catalog.setRunningLimit(owner, limit),
    failNext: (route, fault) => faults.add(route, fault),
    stop: () => close(server, timers),
  };
}

/** The body, or null when it is larger than the stand-in accepts. */
async function readBody(request: IncomingMessage): Promise<Buffer | null> {
  const chunks: Buffer[] = [];
  let size = 0;
  for await (const chunk of request as AsyncIterable<Buffer>) {
    size += chunk.length;
    if (size > maxBodyBytes) return null;
    chunks.push(chunk);
  }
  return Buffer.concat(chunks);
}

function writeReply(response: ServerResponse, reply: StandinReply): void {
  if (response.destroyed) return;
  const body = typeof reply.body === 'string' ? Buffer.from(reply.body, 'utf8') : reply.body;
  response.writeHead(reply.status, {
    'content-type': reply.contentType,
    'content-length': body.length,
  });
  response.end(body);
}

function sleep(ms: number, timers: Set<NodeJS.Timeout>): Promise<void> {
  return new Promise((resolve) => {
    const timer = setTimeout(() => {
      timers.delete(timer);
      resolve();
    }, ms);
    timers.add(timer);
  });
}

async function listen(server: Server, host: string, port: number): Promise<string> {
  await new Promise<void>((resolve, reject) => {
    server.once('error', reject);
    server.listen(port, host, () => {
      server.off('error', reject);
      resolve();
    });
  });
  const address = server.address() as AddressInfo;
  const shownHost = address.family === 'IPv6' ? `[${address.address}]` : address.address;
  return `http://${shownHost}:${address.port}`;
}

async function close(server: Server, timers: Set<NodeJS.Timeout>): Promise<void> {
  for (const timer of timers) clearTimeout(timer);
  timers.clear();
  if (!server.listening) return;
  const closed = new Promise<void>((resolve) => server.close(() => resolve()));
  server.closeAllConnections();
  await closed;
}
