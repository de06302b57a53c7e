import type { StandinRoute } from './faults.ts';
import type { LimitOwner, ScriptCatalog } from './scriptCatalog.ts';

/** What a route handler answers; the server writes it. */
export interface StandinReply {
  status: number;
  body: string | Buffer;
  contentType: string;
}

/** A request matched to one of the stand-in's routes. */
export type RouteMatch =
  | { route: 'task-file'; method: 'GET'; dtableUuid: string; encodedScriptName: string }
  | { route: 'script-file'; method: 'GET'; runKey: string }
  | { route: 'running-limit'; method: 'GET' }
  | { route: 'notifications'; method: 'POST' }
  /** Not SeaTable's: how a developer puts a script of their own into a base of the stand-in. */
  | { route: 'store-script'; method: 'PUT'; dtableUuid: string; encodedScriptName: string };

/** The body of one `scripts-exceeded-notifications` call. */
export interface ExceededNotification {
  org_ids?: number[];
  owners?: string[];
}

export interface RouteContext {
  catalog: ScriptCatalog;
  /** Scheme, host and port the `script_url`s point at. */
  fileUrlBase: string;
  notifications: ExceededNotification[];
}

// SeaTable's URL pattern takes the base uuid only in the form the original scheduler sends,
// str(UUID(...)): lower case with dashes. Any other form does not match the route.
const taskFilePath =
  /^\/api\/v2\.1\/dtable\/([0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12})\/run-script\/([^/]+)\/task\/file\/$/;
const scriptFilePath = /^\/files\/([0-9a-f]+)$/;
const storeScriptPath = /^\/standin\/scripts\/([0-9a-fA-F-]{32,36})\/([^/]+)\/$/;

/** Matches a raw request path (still percent-encoded, without the query). */
export function matchRoute(rawPath: string): RouteMatch | null {
  const taskFile = taskFilePath.exec(rawPath);
  if (taskFile) {
    return {
      route: 'task-file',
      method: 'GET',
      dtableUuid: taskFile[1]!,
      encodedScriptName: taskFile[2]!,
    };
  }
  const scriptFile = scriptFilePath.exec(rawPath);
  if (scriptFile) return { route: 'script-file', method: 'GET', runKey: scriptFile[1]! };
  const storeScript = storeScriptPath.exec(rawPath);
  if (storeScript) {
    return {
      route: 'store-script',
      method: 'PUT',
      dtableUuid: storeScript[1]!,
      encodedScriptName: storeScript[2]!,
    };
  }
  if (rawPath === '/api/v2.1/scripts-running-limit/') {
    return { route: 'running-limit', method: 'GET' };
  }
  if (rawPath === '/api/v2.1/scripts-exceeded-notifications/') {
    return { route: 'notifications', method: 'POST' };
  }
  return null;
}

/** Routes that SeaTable guards with the shared secret; script links carry their own key. */
export function requiresSecret(route: StandinRoute): boolean {
  return route !== 'script-file';
}

export function handleRoute(
  match: RouteMatch,
  query: URLSearchParams,
  body: string,
  context: RouteContext,
): StandinReply {
  switch (match.route) {
    case 'task-file':
      return answerTaskFile(match.dtableUuid, match.encodedScriptName, context);
    case 'script-file':
      return answerScriptFile(match.runKey, context);
    case 'running-limit':
      return answerRunningLimit(query, context);
    case 'notifications':
      return recordNotification(body, context);
    case 'store-script':
      return storeScript(match.dtableUuid, match.encodedScriptName, body, context);
  }
}

function storeScript(
  dtableUuid: string,
  encodedScriptName: string,
  source: string,
  context: RouteContext,
): StandinReply {
  const scriptName = decodeScriptName(encodedScriptName);
  if (scriptName === null) return errorReply(400, 'script_name invalid.');
  try {
    context.catalog.setScript({ dtableUuid, scriptName, source });
  } catch {
    return errorReply(400, 'dtable_uuid invalid.');
  }
  return jsonReply(200, { stored: true, dtable_uuid: dtableUuid, script_name: scriptName });
}

/** The name in its path segment, decoded exactly once; null when it is not valid encoding. */
function decodeScriptName(encodedScriptName: string): string | null {
  try {
    return decodeURIComponent(encodedScriptName);
  } catch {
    return null;
  }
}

function answerTaskFile(
  dtableUuid: string,
  encodedScriptName: string,
  context: RouteContext,
): StandinReply {
  const scriptName = decodeScriptName(encodedScriptName);
  if (scriptName === null) return errorReply(400, 'script_name invalid.');
  const issued = context.catalog.issue(dtableUuid, scriptName, context.fileUrlBase);
  if (!issued) return errorReply(404, 'Script not found.');
  return jsonReply(200, { script_url: issued.scriptUrl, temp_api_token: issued.tempApiToken });
}

function answerScriptFile(runKey: string, context: RouteContext): StandinReply {
  const issued = context.catalog.issuedFile(runKey);
  if (!issued) return errorReply(404, 'File not found.');
  issued.fetches += 1;
  return { status: 200, body: issued.source, contentType: 'application/octet-stream' };
}

function answerRunningLimit(query: URLSearchParams, context: RouteContext): StandinReply {
  const owner = limitOwnerFrom(query);
  if (!owner) return errorReply(400, 'username or org_id invalid.');
  return jsonReply(200, { scripts_running_limit: context.catalog.runningLimit(owner) });
}

function limitOwnerFrom(query: URLSearchParams): LimitOwner | null {
  const orgId = query.get('org_id');
  if (orgId) return /^-?\d+$/.test(orgId) ? { orgId: Number(orgId) } : null;
  const username = query.get('username');
  return username ? { username } : null;
}

function recordNotification(body: string, context: RouteContext): StandinReply {
  const notification = parseNotification(body);
  if (!notification) return errorReply(400, 'org_ids or owners invalid.');
  context.notifications.push(notification);
  return jsonReply(200, { success: true });
}

function parseNotification(body: string): ExceededNotification | null {
  let parsed: unknown;
  try {
    parsed = JSON.parse(body);
  } catch {
    return null;
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) return null;
  const { org_ids: orgIds, owners } = parsed as Record<string, unknown>;
  const validOrgIds = Array.isArray(orgIds) && orgIds.every((id) => Number.isInteger(id));
  const validOwners = Array.isArray(owners) && owners.every((name) => typeof name === 'string');
  if (orgIds !== undefined && !validOrgIds) return null;
  if (owners !== undefined && !validOwners) return null;
  if (orgIds === undefined && owners === undefined) return null;
  return parsed as ExceededNotification;
}

export function jsonReply(status: number, payload: unknown): StandinReply {
  return { status, body: JSON.stringify(payload), contentType: 'application/json' };
}

/** SeaTable's API answers errors as `{"error_msg": ...}`. */
export function errorReply(status: number, message: string): StandinReply {
  return jsonReply(status, { error_msg: message });
}
