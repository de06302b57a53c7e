import { encodeHandover } from '@pipeline/runner';

/**
 * The bytes the starter writes to the runner entrypoint's standard input
 * (docs/internals.md, "The sandbox hand-over"): one JSON header line, the script, and the
 * context data as JSON. The secrets travel here, never in the container's configuration.
 */
export interface HandoverInput {
  dtableWebUrl: string;
  apiToken: string;
  /** IANA zone for `TZ`; null leaves it unset. */
  timeZone: string | null;
  script: Uint8Array;
  /**
   * Only a non-empty JSON object reaches the script; anything else (null, an array, `{}`)
   * leaves its standard input empty, as the original's `if context_data` did.
   */
  contextData: unknown;
  /** The run's end marker (`RunEndScanner`); absent, the entrypoint prints no end line. */
  endMarker?: string;
}

/** The hand-over's bytes. They hold the API token: never log them. */
export function handoverBytes(input: HandoverInput): Buffer {
  return encodeHandover({
    env: {
      dtable_web_url: input.dtableWebUrl,
      api_token: input.apiToken,
      is_cloud: '1',
      ...(input.timeZone ? { TZ: input.timeZone } : {}),
    },
    script: input.script,
    context: contextJson(input.contextData),
    ...(input.endMarker === undefined ? {} : { endMarker: input.endMarker }),
  });
}

function contextJson(contextData: unknown): string | null {
  const isObject =
    typeof contextData === 'object' && contextData !== null && !Array.isArray(contextData);
  if (!isObject || Object.keys(contextData).length === 0) return null;
  return JSON.stringify(contextData);
}
