export type { StarterConfig } from './config.ts';
export { ConfigError, loadConfig } from './config.ts';
export type { RunningStarter } from './starter.ts';
export { startStarter } from './starter.ts';
