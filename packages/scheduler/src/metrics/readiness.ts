import type { MikroORM } from '@mikro-orm/mariadb';
import type { NatsConnection } from '@nats-io/nats-core';
import { sqlOf } from '../db/sql.ts';
import type { RunEventLog } from '../messaging/eventLog.ts';

export interface ReadinessDeps {
  connection: NatsConnection;
  eventLog: RunEventLog;
  orm: MikroORM;
  /** How long one check may take before it counts as failed. @default 1500 */
  checkTimeoutMs?: number;
}

export type CheckResult = { status: 'ok' } | { status: 'failed'; reason: string };

export interface Readiness {
  ready: boolean;
  checks: { nats: CheckResult; database: CheckResult };
}

/**
 * Whether this scheduler can do its work now: NATS is connected and JetStream answers for
 * the log's stream, and MariaDB answers a query. Both checks run at once, each with its
 * own deadline, so a hung dependency answers "not ready" instead of hanging the probe.
 */
export async function checkReadiness(deps: ReadinessDeps): Promise<Readiness> {
  const timeoutMs = deps.checkTimeoutMs ?? 1500;
  const [nats, database] = await Promise.all([
    runCheck(timeoutMs, () => checkNats(deps)),
    runCheck(timeoutMs, () => sqlOf(deps.orm).all('SELECT 1 AS one')),
  ]);
  return { ready: nats.status === 'ok' && database.status === 'ok', checks: { nats, database } };
}

async function checkNats(deps: ReadinessDeps): Promise<void> {
  if (deps.connection.isClosed()) throw new Error('the NATS connection is closed');
  await deps.eventLog.jetStreamManager.streams.info(deps.eventLog.naming.stream);
}

async function runCheck(timeoutMs: number, check: () => Promise<unknown>): Promise<CheckResult> {
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<CheckResult>((resolve) => {
    timer = setTimeout(
      () => resolve({ status: 'failed', reason: `no answer within ${timeoutMs} ms` }),
      timeoutMs,
    );
  });
  const checked = check().then(
    (): CheckResult => ({ status: 'ok' }),
    (error: unknown): CheckResult => ({ status: 'failed', reason: reasonOf(error) }),
  );
  try {
    return await Promise.race([checked, expired]);
  } finally {
    clearTimeout(timer);
  }
}

/** The error's own message, cut short: enough to tell "refused" from "timeout" from "closed". */
function reasonOf(error: unknown): string {
  const message = error instanceof Error ? error.message : String(error);
  return message.length > 200 ? `${message.slice(0, 200)}…` : message;
}
