import type { MikroORM } from '@mikro-orm/mariadb';
import type { FastifyInstance } from 'fastify';

/** What the read endpoints need; `buildApp` passes it in. */
export interface ReadRouteDeps {
  orm: MikroORM;
  /** IANA zone of the statistics days and of the times in answers (`TIME_ZONE`). */
  timeZone: string;
}

/**
 * The read side of the contract: run logs, running counts, statistics, admin lists.
 * Registered by `buildApp` behind the token check.
 */
export async function readRoutes(_app: FastifyInstance, _deps: ReadRouteDeps): Promise<void> {
  // Filled in by the read-side work (issue 3).
}
