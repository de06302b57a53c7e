import { pino } from 'pino';
import { ConfigError, describeConfig, loadConfig, type SchedulerConfig } from './config.ts';
import { StartupError } from './messaging/streamSetup.ts';
import { startScheduler } from './scheduler.ts';

/** The scheduler process: configuration, logger, start, and a graceful stop on SIGTERM/SIGINT. */
async function main(): Promise<void> {
  let config: SchedulerConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    for (const problem of error.problems) console.error(problem);
    process.exit(1);
  }

  const logger = pino({
    level: config.logLevel,
    base: { service: 'scheduler' },
    redact: {
      paths: ['req.headers.authorization', '*.apiToken', '*.temp_api_token', '*.password'],
      censor: '[redacted]',
    },
  });
  logger.info({ config: describeConfig(config) }, 'scheduler starting');

  const scheduler = await startScheduler(config, logger);
  let signals = 0;
  const stop = (signal: NodeJS.Signals) => {
    signals += 1;
    if (signals > 1) process.exit(1);
    logger.info({ signal }, 'scheduler stopping');
    scheduler.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'scheduler stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', stop);
  process.on('SIGINT', stop);
}

main().catch((error: unknown) => {
  // A problem waiting cannot fix is one line; anything else keeps its stack.
  if (error instanceof StartupError) console.error(`scheduler failed to start: ${error.message}`);
  else console.error('scheduler failed to start:', error);
  process.exit(1);
});
