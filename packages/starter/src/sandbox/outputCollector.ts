import { TextDecoder } from 'node:util';
import { RunEndScanner } from './runEndScanner.ts';

/**
 * Turns Docker's multiplexed attach stream into the run's output.
 *
 * Without a TTY, Docker frames every write of the container: an 8-byte header (byte 0 the
 * stream: 1 stdout, 2 stderr; bytes 4-7 the payload length, big-endian) and the payload.
 * Frames arrive split across chunks and several per chunk, so the parser keeps its place
 * between chunks. Each stream has its own streaming UTF-8 decoder: a character cut by a
 * frame or chunk boundary stays whole, and bytes that are not UTF-8 become U+FFFD instead
 * of failing the run (BC-01). Text is kept in arrival order, stdout and stderr interleaved.
 *
 * At most `limit` characters are kept, counted in code points as Python's len() counts them
 * (the original's PYTHON_RUNNER_OUTPUT_LIMIT). Past the limit the bytes are parsed and
 * dropped without decoding, so an endless printer costs no memory (BC-03). It counts the
 * bytes it dropped: the frames' payload bytes minus the UTF-8 size of what it kept.
 *
 * With an end marker, standard output is also searched for the entrypoint's end line
 * (`RunEndScanner`): the output stops there and `scriptEnded` resolves with the status.
 * The line and anything after it are not the script's: they count neither as kept nor as
 * dropped.
 */
export class OutputCollector {
  private readonly limit: number;
  private readonly pieces: string[] = [];
  private readonly decoders = new Map<number, TextDecoder>();
  private readonly header = new Uint8Array(8);
  private headerFill = 0;
  private frameStream = 0;
  private frameRemaining = 0;
  private kept = 0;
  private payloadBytes = 0;
  private keptBytes = 0;
  private full = false;
  private dropped = false;
  private ended = false;
  private readonly endScanner: RunEndScanner | null;
  private readonly keepBytes = (bytes: Uint8Array) => this.keep(bytes);

  constructor(limit: number, options: { endMarker?: string } = {}) {
    if (!Number.isSafeInteger(limit) || limit < 0) {
      throw new RangeError(`output limit must be a non-negative integer, got ${limit}`);
    }
    this.limit = limit;
    this.endScanner = options.endMarker ? new RunEndScanner(options.endMarker) : null;
  }

  /**
   * The script's exit status from the entrypoint's end line, once it was read; never
   * resolves without an end marker or when the container ended without printing the line.
   */
  get scriptEnded(): Promise<number> {
    return this.endScanner?.ended ?? new Promise(() => {});
  }

  /**
   * Feeds raw bytes of the attach stream, in the order they arrived: `chunk` up to `end`.
   * Past the limit nothing is allocated per call, however fast the bytes come. Returns
   * whether it still keeps output (false once the limit is reached).
   */
  push(chunk: Uint8Array, end = chunk.length): boolean {
    if (this.ended) return false;
    let offset = 0;
    while (offset < end) {
      if (this.frameRemaining === 0) {
        offset = this.readHeader(chunk, offset, end);
        continue;
      }
      const take = Math.min(this.frameRemaining, end - offset);
      const bytes = chunk.subarray(offset, offset + take);
      if (this.endScanner && this.frameStream === 1) this.endScanner.feed(bytes, this.keepBytes);
      else this.keep(bytes);
      this.frameRemaining -= take;
      offset += take;
    }
    return !this.full;
  }

  /** Flushes characters the decoders still hold (a truncated sequence becomes U+FFFD). */
  end(): void {
    if (this.ended) return;
    this.endScanner?.flush(this.keepBytes);
    for (const decoder of this.decoders.values()) this.append(decoder.decode());
    this.ended = true;
  }

  /** Whether the script printed more than the limit; what was kept is the first `limit` characters. */
  get truncated(): boolean {
    return this.dropped;
  }

  /**
   * Output bytes read and not kept: the payload of every frame (not the frame headers)
   * minus the UTF-8 size of the kept text. Exact for output that is valid UTF-8, which is
   * what Python prints; a byte that is not UTF-8 is kept as U+FFFD, which counts as three.
   */
  get droppedBytes(): number {
    return Math.max(0, this.payloadBytes - this.keptBytes);
  }

  /** Characters kept so far. */
  get keptCharacters(): number {
    return this.kept;
  }

  /** The output kept so far, as one string. */
  text(): string {
    if (this.pieces.length > 1) {
      const joined = this.pieces.join('');
      this.pieces.length = 0;
      this.pieces.push(joined);
    }
    return this.pieces[0] ?? '';
  }

  private readHeader(chunk: Uint8Array, offset: number, end: number): number {
    let position = offset;
    while (position < end && this.headerFill < 8) {
      this.header[this.headerFill++] = chunk[position++] ?? 0;
    }
    if (this.headerFill === 8) {
      this.headerFill = 0;
      const header = this.header;
      this.frameStream = header[0] ?? 1;
      // Bytes 4-7, big-endian; multiplication keeps lengths of 2 GiB and more positive.
      this.frameRemaining =
        (header[4] ?? 0) * 0x1000000 +
        (((header[5] ?? 0) << 16) | ((header[6] ?? 0) << 8) | (header[7] ?? 0));
    }
    return position;
  }

  private keep(bytes: Uint8Array): void {
    this.payloadBytes += bytes.length;
    if (this.full) this.dropped = true;
    else this.payload(bytes);
  }

  private payload(bytes: Uint8Array): void {
    this.append(this.decoderFor(this.frameStream).decode(bytes, { stream: true }));
  }

  private decoderFor(stream: number): TextDecoder {
    let decoder = this.decoders.get(stream);
    if (!decoder) {
      decoder = new TextDecoder('utf-8', { fatal: false, ignoreBOM: true });
      this.decoders.set(stream, decoder);
    }
    return decoder;
  }

  private append(text: string): void {
    if (text === '') return;
    if (this.full) {
      this.dropped = true;
      return;
    }
    const room = this.limit - this.kept;
    const count = codePointCount(text);
    if (count <= room) {
      this.pieces.push(text);
      this.kept += count;
      this.keptBytes += Buffer.byteLength(text, 'utf8');
      if (this.kept === this.limit) this.full = true;
      return;
    }
    const keptText = text.slice(0, codePointOffset(text, room));
    this.pieces.push(keptText);
    this.keptBytes += Buffer.byteLength(keptText, 'utf8');
    this.kept = this.limit;
    this.full = true;
    this.dropped = true;
  }
}

/** Code points in a well-formed string: UTF-16 units minus the second half of each pair. */
export function codePointCount(text: string): number {
  let count = text.length;
  for (let index = 0; index < text.length; index++) {
    const unit = text.charCodeAt(index);
    if (unit >= 0xdc00 && unit <= 0xdfff) {
      const previous = text.charCodeAt(index - 1);
      if (index > 0 && previous >= 0xd800 && previous <= 0xdbff) count--;
    }
  }
  return count;
}

/** The UTF-16 offset just after the first `codePoints` code points of `text`. */
export function codePointOffset(text: string, codePoints: number): number {
  let offset = 0;
  for (let seen = 0; seen < codePoints && offset < text.length; seen++) {
    const unit = text.charCodeAt(offset);
    const next = text.charCodeAt(offset + 1);
    const pair = unit >= 0xd800 && unit <= 0xdbff && next >= 0xdc00 && next <= 0xdfff;
    offset += pair ? 2 : 1;
  }
  return offset;
}
