export type {
  DatabaseConfig,
  FairShareConfig,
  HttpConfig,
  LogLevel,
  NatsConfig,
  RetentionConfig,
  SchedulerConfig,
  StreamConfig,
} from './config.ts';
export { ConfigError, describeConfig, loadConfig } from './config.ts';
export type { AppDeps } from './http/app.ts';
export { buildApp } from './http/app.ts';
export type { RunView } from './http/runView.ts';
export { formatTime, toRunView } from './http/runView.ts';
export type { RunningScheduler } from './scheduler.ts';
export { startScheduler } from './scheduler.ts';
