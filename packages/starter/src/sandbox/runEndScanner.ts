import { runEndPrefix } from '@pipeline/runner';

const noBytes = Buffer.alloc(0);
/** The status after the marker is a few digits; anything longer is not an end line. */
const longestStatus = 12;

/**
 * Finds the entrypoint's end line (`runEndLine` in @pipeline/runner) in the container's
 * standard output and cuts the output there. The line carries a random marker only this
 * run's hand-over knew, so a script cannot end its run by printing a look-alike by chance;
 * a script that forges it anyway only ends its own run early.
 *
 * Bytes that may be the start of the line, at the end of a read, are held back until the
 * next read tells; everything else is passed on at once. Reads are searched with
 * `Buffer.indexOf`, so a flood of output costs no per-byte work here.
 */
export class RunEndScanner {
  private readonly prefix: Buffer;
  private held: Buffer = noBytes;
  /** The digits read after the prefix; null until the prefix was seen. */
  private status: string | null = null;
  private code: number | null = null;
  private settle: (code: number) => void = () => {};
  /** The script's exit status, once the end line was read whole. */
  readonly ended: Promise<number>;

  constructor(endMarker: string) {
    this.prefix = Buffer.from(runEndPrefix(endMarker), 'latin1');
    this.ended = new Promise((resolve) => {
      this.settle = resolve;
    });
  }

  /** The exit status the end line reported; null while it has not been read. */
  get exitCode(): number | null {
    return this.code;
  }

  /**
   * Feeds standard-output bytes in order; `emit` gets the script's own bytes (valid during
   * the call only). Bytes after the end line are dropped.
   */
  feed(bytes: Uint8Array, emit: (bytes: Uint8Array) => void): void {
    if (this.code !== null) return;
    const data =
      this.held.length > 0
        ? Buffer.concat([this.held, bytes])
        : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.length);
    this.held = noBytes;
    if (this.status !== null) {
      this.readStatus(data, 0);
      return;
    }
    const at = data.indexOf(this.prefix);
    if (at >= 0) {
      if (at > 0) emit(data.subarray(0, at));
      this.status = '';
      this.readStatus(data, at + this.prefix.length);
      return;
    }
    const keep = this.partialPrefixAtEnd(data);
    if (data.length > keep) emit(data.subarray(0, data.length - keep));
    // A copy: the caller's buffer is reused for the next read.
    if (keep > 0) this.held = Buffer.from(data.subarray(data.length - keep));
  }

  /** The output ended without an end line: what was held back was the script's. */
  flush(emit: (bytes: Uint8Array) => void): void {
    if (this.code === null && this.status === null && this.held.length > 0) emit(this.held);
    this.held = noBytes;
  }

  /** How many bytes at the end of `data` are a proper start of the prefix. */
  private partialPrefixAtEnd(data: Buffer): number {
    const from = Math.max(0, data.length - (this.prefix.length - 1));
    // The prefix starts with a NUL: only a NUL near the end can begin it.
    for (let index = data.indexOf(0, from); index >= 0; index = data.indexOf(0, index + 1)) {
      const tail = data.subarray(index);
      if (this.prefix.subarray(0, tail.length).equals(tail)) return tail.length;
    }
    return 0;
  }

  private readStatus(data: Buffer, offset: number): void {
    const newline = data.indexOf(0x0a, offset);
    const end = newline >= 0 ? newline : data.length;
    this.status += data.subarray(offset, end).toString('latin1');
    if (newline < 0 && this.status !== null && this.status.length <= longestStatus) return;
    const status = this.status ?? '';
    this.code = /^-?\d{1,12}$/.test(status) ? Number(status) : -1;
    this.settle(this.code);
  }
}
