/** The version in the hand-over header that the entrypoint understands. */
export const HANDOVER_VERSION = 1;
/** The container's exit code when the entrypoint could not read or carry out the hand-over. */
export const HANDOVER_ERROR_EXIT_CODE = 125;

/** What the starter hands a container on its standard input (docs/internals.md). */
export interface Handover {
  /** The script's environment: `dtable_web_url`, `api_token`, `is_cloud`, `TZ`. */
  env: Record<string, string>;
  /** The script source, as bytes or as text (sent as UTF-8). */
  script: Uint8Array | string;
  /** The context data as JSON text or bytes; absent or null for none (stdin reads ''). */
  context?: Uint8Array | string | null;
  /**
   * A random token the entrypoint prints, with the script's exit status, on standard output
   * right after the script ended (`runEndLine`), so the starter learns the end without
   * waiting for the container to be torn down. Absent: nothing is printed.
   */
  endMarker?: string;
}

/** What an end marker must look like: 16 to 64 lower-case hex digits (entrypoint.py checks it too). */
export const END_MARKER_PATTERN = /^[0-9a-f]{16,64}$/;

/**
 * The bytes the entrypoint writes after the script ended, `code` being its exit status:
 * a NUL, `pipeline-end:`, the marker, `:`, the status and a newline. The starter cuts the
 * output there; nothing after them is the script's.
 */
export function runEndLine(endMarker: string, code: number): Buffer {
  return Buffer.from(`${runEndPrefix(endMarker)}${code}\n`, 'latin1');
}

/** Everything of the end line before the status. */
export function runEndPrefix(endMarker: string): string {
  return `\0pipeline-end:${endMarker}:`;
}

function asBytes(content: Uint8Array | string): Buffer {
  return typeof content === 'string' ? Buffer.from(content, 'utf8') : Buffer.from(content);
}

/**
 * The bytes to write on the container's standard input before closing it: one JSON header
 * line, then the script, then the context. Holds the API token: never log it.
 */
export function encodeHandover(handover: Handover): Buffer {
  const script = asBytes(handover.script);
  const context = handover.context == null ? Buffer.alloc(0) : asBytes(handover.context);
  if (handover.endMarker !== undefined && !END_MARKER_PATTERN.test(handover.endMarker)) {
    throw new RangeError('an end marker is 16 to 64 lower-case hex digits');
  }
  const header = JSON.stringify({
    v: HANDOVER_VERSION,
    env: handover.env,
    scriptBytes: script.length,
    contextBytes: context.length,
    ...(handover.endMarker === undefined ? {} : { endMarker: handover.endMarker }),
  });
  return Buffer.concat([Buffer.from(`${header}\n`, 'utf8'), script, context]);
}
