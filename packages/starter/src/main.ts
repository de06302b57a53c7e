// First: keeps libraries dockerode would load but the starter never calls out of memory.
import './leanDependencies.ts';
import { pino } from 'pino';
import { ConfigError, loadConfig } from './config.ts';
import { startStarter } from './starter.ts';

/** The composition root: configuration, logger, the starter, and the signals that stop it. */
async function main(): Promise<void> {
  let config: ReturnType<typeof loadConfig>;
  try {
    config = loadConfig();
  } catch (error) {
    if (error instanceof ConfigError) {
      for (const problem of error.problems) console.error(problem);
      process.exit(2);
    }
    throw error;
  }

  const logger = pino({
    level: config.logLevel,
    base: { service: 'starter' },
    redact: {
      paths: ['apiToken', '*.apiToken', 'password', '*.password', 'token', '*.token'],
      remove: true,
    },
  });
  const starter = await startStarter(config, logger);

  let signals = 0;
  const onSignal = (signal: NodeJS.Signals) => {
    signals++;
    if (signals > 1) {
      logger.warn({ signal }, 'second signal: removing its containers and exiting at once');
      void starter.stopNow().finally(() => process.exit(1));
      return;
    }
    logger.info({ signal }, 'stopping: no new runs, waiting for runs in progress');
    void starter.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stop failed');
        process.exit(1);
      },
    );
  };
  process.on('SIGTERM', onSignal);
  process.on('SIGINT', onSignal);
}

main().catch((error: unknown) => {
  console.error('starter failed to start:', error instanceof Error ? error.message : error);
  process.exit(1);
});
