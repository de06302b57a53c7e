import { canonicalUuid } from '@pipeline/events';

/** A checked `POST /run-script/` body, in the pipeline's words. */
export interface Submission {
  /** Canonical: lower case with dashes. */
  dtableUuid: string;
  scriptName: string;
  owner: string;
  /** -1 means "no org". */
  orgId: number;
  /** Only a JSON object reaches the script; anything else is dropped (BC-09 C). */
  contextData: Record<string, unknown> | null;
  /** -1 no check, 0 ask SeaTable, N at most N runs this month. */
  scriptsRunningLimit: number;
  operateFrom: string;
  operator: string | null;
}

export type SubmissionCheck = { ok: true; submission: Submission } | { ok: false; message: string };

/** The original's texts: a body that is not an object is a "Bad request". */
export const submissionTexts = {
  badRequest: 'Bad request',
  invalid: 'Parameters invalid',
} as const;

/** `script_log.operate_from` is varchar(50) in the original schema. */
const operateFromMaxLength = 50;
const textMaxLength = 255;
const int32 = { min: -2_147_483_648, max: 2_147_483_647 };
/** How deeply `context_data` may nest objects and arrays. */
export const contextMaxDepth = 64;

/**
 * Checks a submission body. Never throws: every wrong shape is a 400 text, so no input
 * can turn into a 500 (the original answers 500 for a string `scripts_running_limit`).
 */
export function parseSubmission(body: unknown): SubmissionCheck {
  if (typeof body !== 'object' || body === null || Array.isArray(body)) {
    return refuse(submissionTexts.badRequest);
  }
  const fields = body as Record<string, unknown>;
  const dtableUuid =
    typeof fields.dtable_uuid === 'string' ? canonicalUuid(fields.dtable_uuid) : null;
  const scriptName = fields.script_name;
  const owner = fields.owner;
  if (dtableUuid === null || !isScriptName(scriptName) || !isText(owner)) {
    return refuse(submissionTexts.invalid);
  }

  const orgId = optionalInteger(fields.org_id, -1);
  const limit = optionalInteger(fields.scripts_running_limit, -1);
  const operateFrom = optionalText(fields.operate_from, 'manualy', operateFromMaxLength);
  const operator = optionalText(fields.operator, null, textMaxLength);
  // -1 means "no org"; below it is no org id at all.
  if (orgId === undefined || orgId < -1 || limit === undefined || limit < -1) {
    return refuse(submissionTexts.invalid);
  }
  if (operateFrom === undefined || operateFrom === null || operator === undefined) {
    return refuse(submissionTexts.invalid);
  }
  // Deeper than any row or table context; far deeper nesting would overflow the stack of
  // every JSON encoder on the way (the event, the log, the script's own json module).
  if (nestingDepth(fields.context_data, contextMaxDepth) > contextMaxDepth) {
    return refuse(submissionTexts.invalid);
  }

  return {
    ok: true,
    submission: {
      dtableUuid,
      scriptName,
      owner,
      orgId,
      contextData: isPlainObject(fields.context_data) ? fields.context_data : null,
      scriptsRunningLimit: limit,
      operateFrom,
      operator,
    },
  };
}

/**
 * A script name is a file name: no `/`, no NUL, at most 255 characters. The event
 * catalogue counts UTF-16 units, so a name of many emoji can reach that limit before 255
 * characters; such a name is refused here rather than failing later.
 */
export function isScriptName(value: unknown): value is string {
  return (
    typeof value === 'string' &&
    value !== '' &&
    value.length <= textMaxLength &&
    !value.includes('/') &&
    !value.includes('\u0000')
  );
}

function isText(value: unknown): value is string {
  return typeof value === 'string' && value.trim() !== '' && value.length <= textMaxLength;
}

/** The value when it is an int32, the fallback when absent or null, undefined when wrong. */
function optionalInteger(value: unknown, fallback: number): number | undefined {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'number' || !Number.isInteger(value)) return undefined;
  return value >= int32.min && value <= int32.max ? value : undefined;
}

function optionalText<F extends string | null>(
  value: unknown,
  fallback: F,
  maxLength: number,
): string | F | undefined {
  if (value === undefined || value === null) return fallback;
  if (typeof value !== 'string' || value.length > maxLength) return undefined;
  return value;
}

function isPlainObject(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

function refuse(message: string): SubmissionCheck {
  return { ok: false, message };
}

/** Groups own runs too; they are never limited and have no user statistics. */
export function isGroupOwner(owner: string): boolean {
  return owner.includes('@seafile_group');
}

/** The nesting depth of a JSON value, counted only up to just past `limit`. */
function nestingDepth(value: unknown, limit: number, depth = 0): number {
  if (typeof value !== 'object' || value === null) return depth;
  if (depth > limit) return depth;
  let deepest = depth + 1;
  for (const child of Object.values(value)) {
    deepest = Math.max(deepest, nestingDepth(child, limit, depth + 1));
    if (deepest > limit) break;
  }
  return deepest;
}
