/**
 * Errors that carry their HTTP answer. The bodies are the original's short texts (SeaTable
 * shows some of them) or, on the admin endpoints, JSON objects.
 */
export class HttpError extends Error {
  readonly statusCode: number;
  readonly body: string | Record<string, unknown>;

  constructor(statusCode: number, body: string | Record<string, unknown>, options?: ErrorOptions) {
    super(typeof body === 'string' ? body : JSON.stringify(body), options);
    this.name = 'HttpError';
    this.statusCode = statusCode;
    this.body = body;
  }
}

/** A dependency (database, event log) is down or too slow: 503 with the reason. */
export class ServiceUnavailableError extends Error {
  constructor(reason: string, options?: ErrorOptions) {
    super(reason, options);
    this.name = 'ServiceUnavailableError';
  }
}

export const httpTexts = {
  badRequest: 'Bad request',
  parametersInvalid: 'Parameters invalid',
  notFound: 'Not found',
  forbidden: 'Forbidden: the auth token is not correct.',
  tooLarge: 'Request body too large',
  internal: 'Internal server error',
} as const;

export function badRequest(text: string = httpTexts.badRequest): HttpError {
  return new HttpError(400, text);
}

export function notFound(text: string = httpTexts.notFound): HttpError {
  return new HttpError(404, text);
}

/**
 * Runs `work` but answers 503 once `limitMs` have passed, instead of letting a request hang
 * on a database or broker that does not answer (BC-17). The signal tells `work` to give up
 * before any step that must not happen after the caller has been answered.
 */
export async function withinDeadline<T>(
  limitMs: number,
  work: (signal: AbortSignal) => Promise<T>,
): Promise<T> {
  const controller = new AbortController();
  let timer: NodeJS.Timeout | undefined;
  const expired = new Promise<never>((_resolve, reject) => {
    timer = setTimeout(() => {
      controller.abort();
      reject(new ServiceUnavailableError('the database or the event log did not answer in time'));
    }, limitMs);
  });
  const running = work(controller.signal);
  // Once the deadline has answered, a late failure of `work` is expected and already reported.
  running.catch(() => {});
  try {
    return await Promise.race([running, expired]);
  } finally {
    clearTimeout(timer);
  }
}
