import { ConnectionException, DeadlockException, LockWaitTimeoutException } from '@mikro-orm/core';

/** Socket-level failures and the server errors that mean "the database is not there". */
const unavailableCodes = new Set([
  'ECONNREFUSED',
  'ECONNRESET',
  'ETIMEDOUT',
  'EPIPE',
  'EHOSTUNREACH',
  'ENETUNREACH',
  'ENOTFOUND',
  'EAI_AGAIN',
  'PROTOCOL_CONNECTION_LOST',
  'PROTOCOL_SEQUENCE_TIMEOUT',
  'ER_SERVER_SHUTDOWN',
  'ER_CON_COUNT_ERROR',
]);

/** MariaDB client and server error numbers of the same kind (2002 cannot connect, 1927 killed…). */
const unavailableErrnos = new Set([1040, 1053, 1927, 2002, 2003, 2006, 2013]);

/** True when an error says the database cannot be reached, as opposed to a bad query. */
export function isDatabaseUnavailable(error: unknown): boolean {
  if (error instanceof ConnectionException) return true;
  if (!(error instanceof Error)) return false;
  const { code, errno, fatal } = error as { code?: unknown; errno?: unknown; fatal?: unknown };
  if (typeof code === 'string' && unavailableCodes.has(code)) return true;
  if (typeof errno === 'number' && unavailableErrnos.has(errno)) return true;
  if (fatal === true) return true;
  if (
    /connection (is )?(closed|lost)|pool is closed|can't add new command when connection is in closed state/i.test(
      error.message,
    )
  ) {
    return true;
  }
  return error.cause !== undefined && error.cause !== error && isDatabaseUnavailable(error.cause);
}

/** True when retrying the same transaction is the right answer (InnoDB picked it as a victim). */
export function isTransactionConflict(error: unknown): boolean {
  return error instanceof DeadlockException || error instanceof LockWaitTimeoutException;
}
