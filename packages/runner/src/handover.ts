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
  const header = JSON.stringify({
    v: HANDOVER_VERSION,
    env: handover.env,
    scriptBytes: script.length,
    contextBytes: context.length,
  });
  return Buffer.concat([Buffer.from(`${header}\n`, 'utf8'), script, context]);
}
