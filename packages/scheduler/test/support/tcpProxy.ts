import { connect, createServer, type Server, type Socket } from 'node:net';

/**
 * A loopback TCP relay in front of a server the test does not own (the shared MariaDB), so
 * a test can cut the product off from it, or make it stop answering, and let it back in,
 * without touching the server itself.
 */
export interface TcpProxy {
  readonly port: number;
  /** Closes the listener and every relayed connection, as a restarting server does. */
  cut(): Promise<void>;
  /** Keeps connections open but relays nothing, as a hung server or a lost route does. */
  stall(): void;
  /** Relays again (and listens again after a cut) on the same port. */
  restore(): Promise<void>;
  close(): Promise<void>;
}

interface Relay {
  client: Socket;
  upstream: Socket | null;
}

export async function startTcpProxy(targetHost: string, targetPort: number): Promise<TcpProxy> {
  const relays = new Set<Relay>();
  let server: Server | null = null;
  let port = 0;
  let stalled = false;

  const relayTo = (relay: Relay) => {
    const upstream = connect(targetPort, targetHost);
    relay.upstream = upstream;
    const destroy = () => {
      relay.client.destroy();
      upstream.destroy();
      relays.delete(relay);
    };
    for (const socket of [relay.client, upstream]) {
      socket.on('error', destroy);
      socket.on('close', destroy);
    }
    relay.client.pipe(upstream);
    upstream.pipe(relay.client);
  };

  const listen = async () => {
    const listening = createServer((client) => {
      const relay: Relay = { client, upstream: null };
      relays.add(relay);
      client.on('error', () => client.destroy());
      if (stalled) client.pause();
      else relayTo(relay);
    });
    await new Promise<void>((resolve, reject) => {
      listening.once('error', reject);
      listening.listen(port, '127.0.0.1', () => resolve());
    });
    const address = listening.address();
    port = typeof address === 'object' && address ? address.port : port;
    server = listening;
  };

  const cut = async () => {
    const closing = server;
    server = null;
    for (const relay of relays) {
      relay.client.destroy();
      relay.upstream?.destroy();
    }
    relays.clear();
    if (closing) await new Promise<void>((resolve) => closing.close(() => resolve()));
  };

  await listen();
  return {
    get port() {
      return port;
    },
    cut,
    stall() {
      stalled = true;
      for (const relay of relays) {
        relay.client.unpipe();
        relay.upstream?.unpipe();
        relay.client.pause();
        relay.upstream?.pause();
      }
    },
    async restore() {
      stalled = false;
      for (const relay of relays) {
        if (!relay.upstream) {
          relayTo(relay);
          continue;
        }
        relay.client.pipe(relay.upstream);
        relay.upstream.pipe(relay.client);
      }
      if (!server) await listen();
    },
    close: cut,
  };
}
