/**
 * Stand-in services for the runner network test: `node listeners.ts <address>:<port>=<name> ...`
 * listens on each and greets every connection with `<name>\n`, then closes it. Prints
 * `listening` once all are open. Run only inside the test's own network namespaces.
 */
import { createServer } from 'node:net';

const specs = process.argv.slice(2).map((argument) => {
  const match = /^([\d.]+):(\d+)=(\S+)$/.exec(argument);
  if (!match) throw new Error(`bad listener ${argument}`);
  return { address: match[1] ?? '', port: Number(match[2]), name: match[3] ?? '' };
});

await Promise.all(
  specs.map(
    (spec) =>
      new Promise<void>((resolve, reject) => {
        const server = createServer((socket) => {
          socket.on('error', () => {});
          socket.end(`${spec.name}\n`);
        });
        server.once('error', reject);
        server.listen(spec.port, spec.address, () => resolve());
      }),
  ),
);
console.log('listening');
