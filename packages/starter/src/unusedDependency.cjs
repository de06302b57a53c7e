'use strict';
// Stands in for a library dockerode loads but the starter never calls (leanDependencies.ts):
// anything taken from it is a function that throws, so a call fails loudly, never silently.
function unavailable() {
  throw new Error('not loaded in the starter: BuildKit sessions and ssh engines are not used');
}
module.exports = new Proxy(unavailable, { get: () => unavailable });
