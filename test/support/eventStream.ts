/** One server-sent event: its name and its parsed JSON data. */
export interface StreamEvent {
  event: string;
  data: unknown;
}

/**
 * Reads a `text/event-stream` answer event by event, as a browser's EventSource would, but
 * from a `fetch` response (so it can carry the Authorization header). Comment lines are
 * skipped; the data of each event is parsed as JSON.
 */
export class EventStreamReader {
  private readonly reader: ReadableStreamDefaultReader<Uint8Array>;
  private readonly decoder = new TextDecoder();
  private buffered = '';
  private done = false;

  constructor(response: Response) {
    if (!response.body) throw new Error('the answer has no body');
    this.reader = response.body.getReader();
  }

  /** The next event, or null once the server closed the stream. */
  async next(timeoutMs = 30_000): Promise<StreamEvent | null> {
    const deadline = Date.now() + timeoutMs;
    for (;;) {
      const event = this.takeEvent();
      if (event) return event;
      if (this.done) return null;
      const left = deadline - Date.now();
      if (left <= 0) throw new Error(`no event within ${timeoutMs} ms`);
      let timer: NodeJS.Timeout | undefined;
      const timeout = new Promise<never>((_resolve, reject) => {
        timer = setTimeout(() => reject(new Error(`no event within ${timeoutMs} ms`)), left);
      });
      try {
        const chunk = await Promise.race([this.reader.read(), timeout]);
        if (chunk.done) this.done = true;
        else this.buffered += this.decoder.decode(chunk.value, { stream: true });
      } finally {
        clearTimeout(timer);
      }
    }
  }

  /** Events until (and with) the first one named `name`; throws if the stream ends first. */
  async until(name: string, timeoutMs = 30_000): Promise<StreamEvent[]> {
    const events: StreamEvent[] = [];
    for (;;) {
      const event = await this.next(timeoutMs);
      if (!event) throw new Error(`stream ended before "${name}": ${JSON.stringify(events)}`);
      events.push(event);
      if (event.event === name) return events;
    }
  }

  async cancel(): Promise<void> {
    await this.reader.cancel().catch(() => {});
  }

  private takeEvent(): StreamEvent | null {
    for (;;) {
      const end = this.buffered.indexOf('\n\n');
      if (end < 0) return null;
      const block = this.buffered.slice(0, end);
      this.buffered = this.buffered.slice(end + 2);
      let name = 'message';
      const data: string[] = [];
      for (const line of block.split('\n')) {
        if (line.startsWith(':')) continue;
        if (line.startsWith('event: ')) name = line.slice(7);
        if (line.startsWith('data: ')) data.push(line.slice(6));
      }
      if (data.length > 0) return { event: name, data: JSON.parse(data.join('\n')) };
    }
  }
}
