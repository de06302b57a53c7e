import type { MikroORM } from '@mikro-orm/mariadb';
import type { FastifyInstance } from 'fastify';
import { dialectOf } from '../db/sql.ts';
import { adminRunsRoute } from './read/adminRunsRoute.ts';
import { monthlyStatisticsRoutes } from './read/monthlyStatisticsRoutes.ts';
import { type ReadContext, selectRowsWith } from './read/readModel.ts';
import { runningCountRoute } from './read/runningCountRoute.ts';
import { runStatisticsRoutes } from './read/runStatisticsRoutes.ts';
import { taskLogRoutes } from './read/taskLogRoutes.ts';

/** What the read endpoints need; `buildApp` passes it in. */
export interface ReadRouteDeps {
  orm: MikroORM;
  /** IANA zone of the statistics days and of the times in answers (`TIME_ZONE`). */
  timeZone: string;
  /**
   * The clock that decides the current month when a request names none.
   * @default () => new Date()
   */
  now?: () => Date;
  /**
   * How long one read query may take before the request answers 503.
   * @default 5000
   */
  requestDeadlineMs?: number;
}

/**
 * The read side of the contract: run logs, running counts, statistics, admin lists.
 * Registered by `buildApp` behind the token check. Every answer comes from the read
 * model (MariaDB, or the SQLite file of a first run); nothing here writes.
 */
export async function readRoutes(app: FastifyInstance, deps: ReadRouteDeps): Promise<void> {
  const context: ReadContext = {
    selectRows: selectRowsWith(deps.orm, deps.requestDeadlineMs ?? 5000),
    dialect: dialectOf(deps.orm),
    timeZone: deps.timeZone,
    now: deps.now ?? (() => new Date()),
  };
  taskLogRoutes(app, context);
  runningCountRoute(app, context);
  monthlyStatisticsRoutes(app, context);
  adminRunsRoute(app, context);
  runStatisticsRoutes(app, context);
}
