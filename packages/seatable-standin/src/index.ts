export type { StandinFault, StandinRoute } from './faults.ts';
export { standinRoutes } from './faults.ts';
export type { ExceededNotification } from './routes.ts';
export type { SampleScript } from './samples.ts';
export { sampleBaseUuid, sampleOwner, sampleScripts } from './samples.ts';
export type { IssuedScriptFile, LimitOwner, StandinScript } from './scriptCatalog.ts';
export type { RecordedRequest, SeaTableStandin, SeaTableStandinOptions } from './standin.ts';
export { startSeaTableStandin } from './standin.ts';
