import type { MikroORM } from '@mikro-orm/mariadb';
import { canonicalUuid } from '@pipeline/events';
import type { FastifyInstance, FastifyRequest } from 'fastify';
import { sqlOf } from '../db/sql.ts';
import { parseSubmission } from '../submission/parseSubmission.ts';
import type { RunAdmission } from '../submission/runAdmission.ts';
import { badRequest, HttpError, httpTexts, notFound, withinDeadline } from './httpErrors.ts';
import { runColumns, type ScriptLogRow, toRunView } from './runView.ts';

export interface RunRouteDeps {
  orm: MikroORM;
  admission: RunAdmission;
  timeZone: string;
  requestDeadlineMs: number;
}

/** Printable ASCII without spaces, so the key fits a `Nats-Msg-Id` header as it is. */
const idempotencyKeyPattern = /^[\x21-\x7e]{1,200}$/;

/** Submitting a run (`POST /run-script/`) and polling it (`GET /run-script/<id>/`). */
export async function runRoutes(app: FastifyInstance, deps: RunRouteDeps): Promise<void> {
  app.post('/run-script/', async (request) => {
    const check = parseSubmission(parseJsonBody(request.body));
    if (!check.ok) throw badRequest(check.message);
    const idempotencyKey = readIdempotencyKey(request);

    const result = await withinDeadline(deps.requestDeadlineMs, (signal) =>
      deps.admission.admit(check.submission, { idempotencyKey, signal }),
    );
    if (result.outcome === 'refused') throw badRequest(result.message);
    if (result.outcome === 'key-reused') throw new HttpError(422, result.message);
    request.log.info(
      { runId: result.runId, duplicate: result.duplicate, dtableUuid: check.submission.dtableUuid },
      'run accepted',
    );
    return { script_id: result.runId };
  });

  app.get('/run-script/:scriptId/', async (request) => {
    const { scriptId } = request.params as { scriptId: string };
    if (!/^-?\d+$/.test(scriptId)) throw badRequest();
    const query = request.query as Record<string, unknown>;
    const dtableUuid = query.dtable_uuid;
    const scriptName = query.script_name;
    if (
      typeof dtableUuid !== 'string' ||
      dtableUuid === '' ||
      typeof scriptName !== 'string' ||
      scriptName === ''
    ) {
      throw badRequest(httpTexts.parametersInvalid);
    }
    const canonical = canonicalUuid(dtableUuid);
    if (canonical === null) throw badRequest();

    const runId = Number(scriptId);
    if (!Number.isSafeInteger(runId) || runId <= 0) throw notFound();
    const rows = await withinDeadline(deps.requestDeadlineMs, () =>
      sqlOf(deps.orm).all<ScriptLogRow>(`SELECT ${runColumns} FROM script_log WHERE id = ?`, [
        runId,
      ]),
    );
    const row = rows[0];
    if (!row) throw notFound();
    // Rows adopted from the original may hold the uuid in another form.
    if (canonicalUuid(row.dtable_uuid) !== canonical || row.script_name !== scriptName) {
      throw badRequest();
    }
    return { script: toRunView(row, deps.timeZone) };
  });
}

/** The body as a JSON object; anything else is the original's `Bad request`. */
function parseJsonBody(body: unknown): Record<string, unknown> {
  if (typeof body !== 'string') throw badRequest();
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    throw badRequest();
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw badRequest();
  return parsed as Record<string, unknown>;
}

function readIdempotencyKey(request: FastifyRequest): string | undefined {
  const header = request.headers['idempotency-key'];
  if (header === undefined) return undefined;
  if (typeof header !== 'string' || !idempotencyKeyPattern.test(header)) {
    throw new HttpError(400, httpTexts.badRequest);
  }
  return header;
}
