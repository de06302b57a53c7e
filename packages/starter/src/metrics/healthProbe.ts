import { ConfigError, loadConfig } from '../config.ts';

/**
 * The image's health check (deploy/starter.Dockerfile): asks this starter's `/readyz` with
 * its token, so the container turns unhealthy when the starter cannot reach NATS or the
 * Docker engine, or stopped storing its heartbeat. Needs `PYTHON_STARTER_METRICS_PORT`,
 * which the image sets. Prints one line and exits 0 (ready) or 1.
 *
 *   node packages/starter/src/metrics/healthProbe.ts
 */
export interface ProbeResult {
  ok: boolean;
  line: string;
}

/** Asks `url` + `/readyz`; every failure, a timeout included, is a line saying what happened. */
export async function probeReadiness(
  url: string,
  token: string,
  timeoutMs = 4000,
): Promise<ProbeResult> {
  try {
    const response = await fetch(`${url}/readyz`, {
      headers: { authorization: `Bearer ${token}` },
      signal: AbortSignal.timeout(timeoutMs),
    });
    const body = await response.text();
    return { ok: response.status === 200, line: `${response.status} ${body}` };
  } catch (error) {
    const reason = error instanceof Error ? error.message : String(error);
    return { ok: false, line: `${url}/readyz did not answer: ${reason}` };
  }
}

/** Where a local client reaches a server listening on `host` (any address means loopback). */
export function localUrl(host: string, port: number): string {
  const reachable = host === '0.0.0.0' ? '127.0.0.1' : host === '::' ? '::1' : host;
  return `http://${reachable.includes(':') ? `[${reachable}]` : reachable}:${port}`;
}

async function main(): Promise<void> {
  let result: ProbeResult;
  try {
    const { http } = loadConfig();
    result = http
      ? await probeReadiness(localUrl(http.host, http.port), http.token)
      : { ok: false, line: 'PYTHON_STARTER_METRICS_PORT is off: there is no /readyz to ask' };
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    result = { ok: false, line: error.problems.join('; ') };
  }
  process.stdout.write(`${result.line}\n`);
  process.exit(result.ok ? 0 : 1);
}

if (import.meta.main) await main();
