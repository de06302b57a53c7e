import { registerHooks } from 'node:module';

/**
 * dockerode loads, as it starts, two libraries the starter never calls: gRPC and its proto
 * loader (for BuildKit sessions, which only image builds use) and ssh2 (for engines reached
 * over ssh, which the starter's DOCKER_HOST does not accept). Together they hold some 25 MB
 * of every starter's resident memory. Imported first by `main.ts`, this resolves them, when
 * dockerode or docker-modem asks, to a stand-in that throws if it is ever called.
 */
const standIn = new URL('./unusedDependency.cjs', import.meta.url).href;
const unused: ReadonlyMap<string, string> = new Map([
  ['@grpc/grpc-js', '/dockerode/lib/'],
  ['@grpc/proto-loader', '/dockerode/lib/'],
  ['ssh2', '/docker-modem/lib/'],
]);

registerHooks({
  resolve(specifier, context, nextResolve) {
    const requiredBy = unused.get(specifier);
    if (requiredBy && context.parentURL?.includes(requiredBy)) {
      return { url: standIn, format: 'commonjs', shortCircuit: true };
    }
    return nextResolve(specifier, context);
  },
});
