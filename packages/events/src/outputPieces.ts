/** Largest piece of output in one event (docs/internals.md, "Long output"): a run's own, or an adopted one's. */
export const outputPieceBytes = 256 * 1024;

/**
 * Splits a run's output into pieces that each fit one event: at most `maxBytes` bytes once
 * written as a JSON string in UTF-8 (so escapes count too, and a piece of control
 * characters cannot outgrow a NATS message). Cuts fall between characters, never inside a
 * surrogate pair. The empty output is one empty piece.
 */
export function outputPieces(output: string, maxBytes = outputPieceBytes): string[] {
  const pieces: string[] = [];
  let start = 0;
  let bytes = 0;
  let index = 0;
  while (index < output.length) {
    const unit = output.charCodeAt(index);
    const next = output.charCodeAt(index + 1);
    const pair = unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
    const width = pair ? 2 : 1;
    const cost = pair ? 4 : jsonUtf8Bytes(unit);
    if (bytes + cost > maxBytes && index > start) {
      pieces.push(output.slice(start, index));
      start = index;
      bytes = 0;
    }
    bytes += cost;
    index += width;
  }
  pieces.push(output.slice(start));
  return pieces;
}

/** Bytes one UTF-16 unit (not part of a pair) takes inside a JSON string in UTF-8. */
function jsonUtf8Bytes(unit: number): number {
  if (unit === 0x22 || unit === 0x5c) return 2;
  if (unit < 0x20)
    return unit === 0x08 || unit === 0x09 || unit === 0x0a || unit === 0x0c || unit === 0x0d
      ? 2
      : 6;
  if (unit < 0x80) return 1;
  if (unit < 0x800) return 2;
  // A lone surrogate is written as a \uXXXX escape.
  if (unit >= 0xd800 && unit <= 0xdfff) return 6;
  return 3;
}
