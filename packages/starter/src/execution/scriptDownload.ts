/** Largest script the starter accepts; SeaTable scripts are a few kilobytes. */
export const maxScriptBytes = 16 * 1024 * 1024;

const downloadTimeoutMs = 60_000;

export type ScriptDownload =
  | { ok: true; script: Uint8Array }
  | { ok: false; reason: string; status: number | null };

/**
 * The URL the starter fetches: with an alternative root, the script URL's scheme and host
 * are replaced by it (the original's PYTHON_STARTER_ALTERNATIVE_FILE_SERVER_ROOT), for
 * installs where the public URL is not reachable from the starter.
 */
export function scriptDownloadUrl(scriptUrl: string, alternativeRoot: string | null): string {
  if (!alternativeRoot) return scriptUrl;
  const origin = /^https?:\/\/[^/]*\/?/i.exec(scriptUrl);
  if (!origin) return scriptUrl;
  return `${alternativeRoot.replace(/\/+$/, '')}/${scriptUrl.slice(origin[0].length)}`;
}

/** Fetches a script's source. Never throws: a failed download is a result. */
export async function downloadScript(url: string, signal?: AbortSignal): Promise<ScriptDownload> {
  const timeout = AbortSignal.timeout(downloadTimeoutMs);
  let response: Response;
  try {
    response = await fetch(url, {
      redirect: 'follow',
      signal: signal ? AbortSignal.any([signal, timeout]) : timeout,
    });
  } catch (error) {
    return { ok: false, reason: `request failed: ${(error as Error).message}`, status: null };
  }
  if (response.status < 200 || response.status >= 300) {
    await response.body?.cancel().catch(() => {});
    return { ok: false, reason: `answered ${response.status}`, status: response.status };
  }
  try {
    return { ok: true, script: await readCapped(response) };
  } catch (error) {
    return { ok: false, reason: (error as Error).message, status: response.status };
  }
}

async function readCapped(response: Response): Promise<Uint8Array> {
  const declared = Number(response.headers.get('content-length') ?? '0');
  if (declared > maxScriptBytes) {
    await response.body?.cancel().catch(() => {});
    throw new Error(`script of ${declared} bytes is larger than ${maxScriptBytes}`);
  }
  const parts: Uint8Array[] = [];
  let total = 0;
  for await (const part of response.body ?? []) {
    total += part.length;
    if (total > maxScriptBytes) throw new Error(`script is larger than ${maxScriptBytes} bytes`);
    parts.push(part);
  }
  const script = new Uint8Array(total);
  let offset = 0;
  for (const part of parts) {
    script.set(part, offset);
    offset += part.length;
  }
  return script;
}
