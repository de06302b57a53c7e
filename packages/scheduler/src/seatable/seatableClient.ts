/**
 * The calls the scheduler makes to the SeaTable server. Both authenticate the way the
 * original scheduler does: `Authorization: Token <PYTHON_SCHEDULER_AUTH_TOKEN>`.
 */

export interface SeaTableClientOptions {
  /** `SEATABLE_SERVER_URL`, without a trailing slash. */
  serverUrl: string;
  authToken: string;
  /** @default 10000 */
  timeoutMs?: number;
}

export type ScriptTaskFile =
  | { outcome: 'found'; scriptUrl: string; apiToken: string }
  /** SeaTable answered 404: the script does not exist (any more). */
  | { outcome: 'not-found' }
  /** SeaTable could not be asked or answered something unusable; worth retrying later. */
  | { outcome: 'unavailable'; reason: string };

export type RunningLimit =
  | { outcome: 'limit'; limit: number }
  | { outcome: 'error'; reason: string };

export type NotificationOutcome = { outcome: 'sent' } | { outcome: 'error'; reason: string };

export class SeaTableClient {
  private readonly serverUrl: string;
  private readonly authToken: string;
  private readonly timeoutMs: number;

  constructor(options: SeaTableClientOptions) {
    this.serverUrl = options.serverUrl.replace(/\/+$/, '');
    this.authToken = options.authToken;
    this.timeoutMs = options.timeoutMs ?? 10_000;
  }

  /**
   * The script's download URL and the run's temporary API token. The script name is one
   * path segment, so `/`, `%`, `#` and `+` in it reach SeaTable as the name (BC-10).
   */
  async scriptTaskFile(dtableUuid: string, scriptName: string): Promise<ScriptTaskFile> {
    const url =
      `${this.serverUrl}/api/v2.1/dtable/${encodeURIComponent(dtableUuid)}` +
      `/run-script/${encodeURIComponent(scriptName)}/task/file/`;
    const response = await this.get(url);
    if (!response.ok) return { outcome: 'unavailable', reason: response.reason };
    if (response.status === 404) return { outcome: 'not-found' };
    if (response.status !== 200) {
      return { outcome: 'unavailable', reason: `SeaTable answered ${response.status}` };
    }
    const body = response.body as { script_url?: unknown; temp_api_token?: unknown } | null;
    if (typeof body?.script_url !== 'string' || body.script_url === '') {
      return { outcome: 'unavailable', reason: 'SeaTable answered without a script_url' };
    }
    const apiToken = typeof body.temp_api_token === 'string' ? body.temp_api_token : '';
    return { outcome: 'found', scriptUrl: body.script_url, apiToken };
  }

  /** The owner's monthly run limit (-1 = unlimited), asked by org when there is one. */
  async scriptsRunningLimit(owner: string, orgId: number): Promise<RunningLimit> {
    const query =
      orgId !== -1
        ? `org_id=${encodeURIComponent(String(orgId))}`
        : `username=${encodeURIComponent(owner)}`;
    const response = await this.get(`${this.serverUrl}/api/v2.1/scripts-running-limit/?${query}`);
    if (!response.ok) return { outcome: 'error', reason: response.reason };
    if (response.status !== 200) {
      return { outcome: 'error', reason: `SeaTable answered ${response.status}` };
    }
    const limit = (response.body as { scripts_running_limit?: unknown } | null)
      ?.scripts_running_limit;
    if (typeof limit !== 'number' || !Number.isInteger(limit) || limit < -1) {
      return {
        outcome: 'error',
        reason: 'SeaTable answered without a usable scripts_running_limit',
      };
    }
    return { outcome: 'limit', limit };
  }

  /** Tells SeaTable that owners ran over their fair share (it notifies them). */
  async notifyScriptsExceeded(
    target: { orgIds: number[] } | { owners: string[] },
  ): Promise<NotificationOutcome> {
    const body = 'orgIds' in target ? { org_ids: target.orgIds } : { owners: target.owners };
    try {
      const response = await fetch(`${this.serverUrl}/api/v2.1/scripts-exceeded-notifications/`, {
        method: 'POST',
        headers: {
          Authorization: `Token ${this.authToken}`,
          'Content-Type': 'application/json',
        },
        body: JSON.stringify(body),
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
      await response.arrayBuffer();
      if (response.status >= 200 && response.status < 300) return { outcome: 'sent' };
      return { outcome: 'error', reason: `SeaTable answered ${response.status}` };
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return { outcome: 'error', reason: cause ?? (error as Error).name ?? 'request failed' };
    }
  }

  private async get(
    url: string,
  ): Promise<{ ok: true; status: number; body: unknown } | { ok: false; reason: string }> {
    try {
      const response = await fetch(url, {
        headers: { Authorization: `Token ${this.authToken}`, Accept: 'application/json' },
        signal: AbortSignal.timeout(this.timeoutMs),
        redirect: 'error',
      });
      const text = await response.text();
      let body: unknown = null;
      try {
        body = text === '' ? null : JSON.parse(text);
      } catch {
        body = null;
      }
      return { ok: true, status: response.status, body };
    } catch (error) {
      const cause = (error as { cause?: { code?: string } }).cause?.code;
      return { ok: false, reason: cause ?? (error as Error).name ?? 'request failed' };
    }
  }
}
