import type { MikroORM } from '@mikro-orm/mariadb';
import Fastify, {
  type FastifyBaseLogger,
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify';
import type { Logger } from 'pino';
import { isDatabaseUnavailable } from '../db/dbErrors.ts';
import type { FleetView } from '../fleet/fleetView.ts';
import {
  EventLogUnavailableError,
  EventTooLargeError,
  type RunEventLog,
} from '../messaging/eventLog.ts';
import type { RunAdmission } from '../submission/runAdmission.ts';
import { adminRunRoutes } from './adminRunRoutes.ts';
import { auditRoutes } from './auditRoutes.ts';
import { isAuthorized } from './auth.ts';
import { dashboardPages } from './dashboard/dashboardPages.ts';
import { dashboardStatisticsRoute } from './dashboard/dashboardStatisticsRoute.ts';
import { healthRoutes, type ObservabilityDeps } from './healthRoutes.ts';
import { HttpError, httpTexts, ServiceUnavailableError } from './httpErrors.ts';
import type { LiveOutputHub } from './live/liveOutputHub.ts';
import { liveOutputRoute } from './live/liveOutputRoute.ts';
import { selectRowsWith } from './read/readModel.ts';
import { readRoutes } from './readRoutes.ts';
import { runRoutes } from './runRoutes.ts';

export interface AppDeps {
  /** `PYTHON_SCHEDULER_AUTH_TOKEN`. */
  authToken: string;
  /** `TIME_ZONE`, for the times in answers. */
  timeZone: string;
  /** Larger bodies answer 413. */
  maxBodyBytes: number;
  logger: Logger;
  orm: MikroORM;
  admission: RunAdmission;
  /** How long a request may wait on the database or the log before it answers 503. @default 4000 */
  requestDeadlineMs?: number;
  /** Metrics and readiness; without them only `/healthz` is served. */
  observability?: ObservabilityDeps;
  /** The log the admin cancel appends to; without it the cancel answers 503. */
  eventLog?: RunEventLog;
  /** The starters' heartbeats for `/admin/fleet/`; without it that route answers 503. */
  fleet?: FleetView;
  /** What running runs printed so far, for the live output stream; without it that route answers 503. */
  liveOutput?: LiveOutputHub;
}

/** The scheduler's HTTP API, not yet listening: `main` listens, tests use `inject`. */
export async function buildApp(deps: AppDeps): Promise<FastifyInstance> {
  const app = Fastify({
    // pino's Logger is fastify's logger type; naming the base type keeps FastifyInstance plain.
    loggerInstance: deps.logger as FastifyBaseLogger,
    bodyLimit: deps.maxBodyBytes,
    return503OnClosing: true,
    // Every contract path ends with a slash; the other form is redirected, not aliased.
    routerOptions: { ignoreTrailingSlash: false, maxParamLength: 1000 },
  });

  acceptAnyBodyAsText(app);
  const routePatterns = collectRoutePatterns(app);
  app.setNotFoundHandler((request, reply) => redirectOrNotFound(request, reply, routePatterns));
  app.setErrorHandler(answerError);

  app.get('/ping/', async (_request, reply) => reply.type('text/html; charset=utf-8').send('Pong'));
  await healthRoutes(app, { authToken: deps.authToken, observability: deps.observability });
  // The dashboard's page holds no data: every figure on it comes from the routes below.
  await dashboardPages(app);

  await app.register(async (authenticated) => {
    authenticated.addHook('onRequest', async (request, reply) => {
      if (!isAuthorized(request.headers.authorization, deps.authToken)) {
        request.log.info('request refused without a valid token');
        await reply.code(403).type('text/html; charset=utf-8').send(httpTexts.forbidden);
      }
    });
    await runRoutes(authenticated, {
      orm: deps.orm,
      admission: deps.admission,
      timeZone: deps.timeZone,
      requestDeadlineMs: deps.requestDeadlineMs ?? 4000,
    });
    await readRoutes(authenticated, {
      orm: deps.orm,
      timeZone: deps.timeZone,
      requestDeadlineMs: deps.requestDeadlineMs ?? 4000,
    });
    await adminRunRoutes(authenticated, {
      eventLog: deps.eventLog,
      fleet: deps.fleet,
      requestDeadlineMs: deps.requestDeadlineMs ?? 4000,
    });
    await auditRoutes(authenticated, {
      eventLog: deps.eventLog,
      orm: deps.orm,
      timeZone: deps.timeZone,
    });
    const selectRows = selectRowsWith(deps.orm, deps.requestDeadlineMs ?? 4000);
    await liveOutputRoute(authenticated, {
      hub: deps.liveOutput,
      selectRows,
      eventLog: deps.eventLog,
    });
    dashboardStatisticsRoute(authenticated, {
      selectRows,
      timeZone: deps.timeZone,
      now: () => new Date(),
    });
  });

  return app;
}

/**
 * SeaTable posts JSON, but the original reads the raw body whatever its content type. The
 * body arrives as text and each route parses it, so a body that is not JSON is the route's
 * 400 and never fastify's parser error.
 */
function acceptAnyBodyAsText(app: FastifyInstance): void {
  app.removeAllContentTypeParsers();
  app.addContentTypeParser('*', { parseAs: 'string' }, (_request, body, done) => {
    done(null, body);
  });
}

/** Route paths as patterns, to tell "missing slash" (308) from "no such path" (404). */
function collectRoutePatterns(app: FastifyInstance): RegExp[] {
  const patterns: RegExp[] = [];
  app.addHook('onRoute', (route) => {
    const source = route.url
      .split('/')
      .map((segment) =>
        segment.startsWith(':') ? '[^/]+' : segment === '*' ? '.*' : escapeRegExp(segment),
      )
      .join('/');
    patterns.push(new RegExp(`^${source}$`));
  });
  return patterns;
}

async function redirectOrNotFound(
  request: FastifyRequest,
  reply: FastifyReply,
  routePatterns: RegExp[],
): Promise<void> {
  const queryStart = request.url.indexOf('?');
  const path = queryStart === -1 ? request.url : request.url.slice(0, queryStart);
  const query = queryStart === -1 ? '' : request.url.slice(queryStart);
  const slashed = `${path}/`;
  if (!path.endsWith('/') && routePatterns.some((pattern) => pattern.test(slashed))) {
    await reply.code(308).header('location', `${slashed}${query}`).send();
    return;
  }
  await reply.code(404).type('text/html; charset=utf-8').send(httpTexts.notFound);
}

/**
 * The one place that turns errors into answers: 4xx at info, outages (503) at warn, every
 * other failure at error with a body that tells nothing about the inside.
 */
async function answerError(
  error: FastifyError | Error,
  request: FastifyRequest,
  reply: FastifyReply,
): Promise<void> {
  if (error instanceof HttpError) {
    request.log.info({ statusCode: error.statusCode, answer: error.message }, 'request refused');
    const type = typeof error.body === 'string' ? 'text/html; charset=utf-8' : 'application/json';
    await reply.code(error.statusCode).type(type).send(error.body);
    return;
  }
  if (error instanceof EventTooLargeError) {
    request.log.info({ statusCode: 413, answer: error.message }, 'request refused');
    await reply.code(413).type('text/html; charset=utf-8').send(httpTexts.tooLarge);
    return;
  }
  const outage = unavailableReason(error);
  if (outage) {
    request.log.warn({ err: error }, 'request failed on an unavailable dependency');
    await reply.code(503).type('text/html; charset=utf-8').send(`Service unavailable: ${outage}`);
    return;
  }
  const statusCode = (error as FastifyError).statusCode;
  if (statusCode !== undefined && statusCode >= 400 && statusCode < 500) {
    request.log.info({ statusCode, code: (error as FastifyError).code }, 'request refused');
    const text = statusCode === 413 ? httpTexts.tooLarge : httpTexts.badRequest;
    await reply.code(statusCode).type('text/html; charset=utf-8').send(text);
    return;
  }
  request.log.error({ err: error }, 'request failed');
  await reply.code(500).type('text/html; charset=utf-8').send(httpTexts.internal);
}

function unavailableReason(error: unknown): string | null {
  if (error instanceof ServiceUnavailableError) return error.message;
  if (error instanceof EventLogUnavailableError) return 'the event log cannot be reached';
  if (isDatabaseUnavailable(error)) return 'the database cannot be reached';
  return null;
}

function escapeRegExp(text: string): string {
  return text.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}
