import { writeFile } from 'node:fs/promises';
import { pino } from 'pino';
import { ConfigError, loadConfig, type StandinConfig } from './config.ts';
import { sampleBaseUuid, sampleScripts } from './samples.ts';
import { type SeaTableStandin, startSeaTableStandin } from './standin.ts';

async function main(): Promise<void> {
  let config: StandinConfig;
  try {
    config = loadConfig();
  } catch (error) {
    if (!(error instanceof ConfigError)) throw error;
    console.error(error.message);
    process.exit(2);
  }
  const logger = pino({ name: 'seatable-standin', level: config.logLevel });

  const standin = await startSeaTableStandin({
    host: config.host,
    port: config.port,
    secret: config.secret ?? undefined,
    scripts: sampleScripts,
    scriptUrlBase: config.scriptUrlBase ?? undefined,
    onRequest: (request) =>
      logger.debug({ method: request.method, path: request.path, route: request.route }, 'request'),
  });
  if (config.urlFile) await writeFile(config.urlFile, `${standin.url}\n`);
  process.stdout.write(banner(standin, config.secret === null));
  logger.info({ url: standin.url, scripts: sampleScripts.length }, 'stand-in listening');

  const shutdown = (signal: NodeJS.Signals) => {
    logger.info({ signal }, 'stand-in stopping');
    standin.stop().then(
      () => process.exit(0),
      (error: unknown) => {
        logger.error({ err: error }, 'stand-in did not stop cleanly');
        process.exit(1);
      },
    );
  };
  process.once('SIGINT', shutdown);
  process.once('SIGTERM', shutdown);
}

function banner(standin: SeaTableStandin, secretMadeUp: boolean): string {
  const width = Math.max(...sampleScripts.map((script) => script.scriptName.length));
  const lines = [
    `SeaTable stand-in on ${standin.url} (SEATABLE_SERVER_URL)`,
    secretMadeUp
      ? `shared secret, made up because PYTHON_SCHEDULER_AUTH_TOKEN is unset: ${standin.secret}`
      : 'shared secret: the PYTHON_SCHEDULER_AUTH_TOKEN of the environment',
    `sample base ${sampleBaseUuid} holds:`,
    ...sampleScripts.map((script) => `  ${script.scriptName.padEnd(width)}  ${script.description}`),
  ];
  return `${lines.join('\n')}\n`;
}

await main();
