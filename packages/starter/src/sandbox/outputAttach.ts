import { connect, type Socket } from 'node:net';

/** Where the engine listens, for a connection of the starter's own. */
export type EngineEndpoint = { path: string } | { host: string; port: number };

/** A live attachment to a container's output. */
export interface OutputAttachment {
  /** Resolves when the engine closed the stream (the container stopped) or it broke. */
  readonly ended: Promise<void>;
  close(): void;
}

/** Bytes read per socket read; the one buffer is reused for every read. */
const readBufferBytes = 64 * 1024;
/** Once the sink keeps nothing more, the socket is read this often instead of at once. */
const drainIntervalMs = 5;
/** The longest response head accepted from the engine. */
const maxHeadBytes = 16 * 1024;

/**
 * Attaches to a container's stdout and stderr over a connection of its own and hands each
 * read to `sink` straight from one reused buffer.
 *
 * Why not dockerode's stream: every socket read there is a fresh Buffer, garbage until the
 * next collection, so a script printing as fast as it can makes the starter's memory swing
 * by tens of megabytes although it keeps nothing past the output limit (BC-03). With
 * `onread` the kernel writes into the same 64 KiB each time: memory stays flat.
 *
 * `sink` gets the buffer and how many of its bytes are new; it must use or copy them before
 * it returns, as the next read overwrites them. It returns false once it keeps nothing more
 * (the output limit is reached): from then on the stream is drained in bursts every few
 * milliseconds rather than read by read. The script goes on, slowed to what the bursts take
 * (some 40 MB/s), and the starter spends a few hundred reads a second on it instead of tens
 * of thousands. The socket is never left paused: the engine cannot stop or remove a
 * container whose output it cannot write.
 */
export function attachOutput(
  endpoint: EngineEndpoint,
  containerId: string,
  sink: (bytes: Uint8Array, length: number) => boolean,
): Promise<OutputAttachment> {
  return new Promise((resolve, reject) => {
    const head = new HeadReader();
    let attached = false;
    let drainTimer: NodeJS.Timeout | null = null;
    const drainInBursts = () => {
      socket.pause();
      drainTimer = setInterval(() => {
        socket.resume();
        setImmediate(() => {
          if (drainTimer) socket.pause();
        });
      }, drainIntervalMs);
      drainTimer.unref();
    };
    const stopDraining = () => {
      if (drainTimer) clearInterval(drainTimer);
      drainTimer = null;
      socket.resume();
    };
    let endStream: () => void = () => {};
    const ended = new Promise<void>((done) => {
      endStream = done;
    });
    const fail = (error: Error) => {
      if (!attached) reject(error);
      socket.destroy();
    };

    const socket: Socket = connect({
      ...endpoint,
      onread: {
        buffer: Buffer.allocUnsafe(readBufferBytes),
        callback: (size, buffer) => {
          if (attached) {
            if (!sink(buffer, size) && !drainTimer) drainInBursts();
            return true;
          }
          const parsed = head.push(buffer.subarray(0, size));
          if (parsed === null) return true;
          if ('error' in parsed) {
            fail(new Error(parsed.error));
            return false;
          }
          attached = true;
          resolve({
            ended,
            close: () => {
              stopDraining();
              socket.destroy();
            },
          });
          if (parsed.rest.length > 0 && !sink(parsed.rest, parsed.rest.length)) drainInBursts();
          return true;
        },
      },
    });
    socket.setNoDelay(true);
    socket.once('connect', () => {
      socket.write(
        `POST /containers/${encodeURIComponent(containerId)}/attach?stream=1&stdout=1&stderr=1 HTTP/1.1\r\n` +
          'Host: docker\r\nConnection: Upgrade\r\nUpgrade: tcp\r\nContent-Length: 0\r\n\r\n',
      );
    });
    socket.once('error', (error) => fail(error));
    socket.once('close', () => {
      if (drainTimer) clearInterval(drainTimer);
      drainTimer = null;
      if (!attached) reject(new Error('engine closed the attach connection before answering'));
      endStream();
    });
  });
}

/** Reads the engine's response head: `101 UPGRADED` or `200 OK`, then the raw stream. */
class HeadReader {
  private seen = '';

  push(bytes: Uint8Array): null | { rest: Uint8Array } | { error: string } {
    // The head is ASCII; latin1 keeps one character per byte so offsets map back to bytes.
    const before = this.seen.length;
    this.seen += Buffer.from(bytes).toString('latin1');
    const end = this.seen.indexOf('\r\n\r\n');
    if (end < 0) {
      return this.seen.length > maxHeadBytes ? { error: 'engine response head too long' } : null;
    }
    const status = /^HTTP\/1\.[01] (\d{3})/.exec(this.seen);
    const code = status ? Number(status[1]) : 0;
    if (code !== 101 && code !== 200) {
      const body = this.seen.slice(end + 4).trim();
      return {
        error: `engine answered the attach with ${code || 'garbage'}${body ? `: ${body}` : ''}`,
      };
    }
    return { rest: bytes.subarray(end + 4 - before) };
  }
}
