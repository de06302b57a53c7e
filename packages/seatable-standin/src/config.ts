const logLevels = ['fatal', 'error', 'warn', 'info', 'debug', 'trace', 'silent'] as const;

export interface StandinConfig {
  /** SEATABLE_STANDIN_HOST: the address to listen on; loopback unless told otherwise. */
  host: string;
  /** SEATABLE_STANDIN_PORT: 0 picks a free port. */
  port: number;
  /** PYTHON_SCHEDULER_AUTH_TOKEN: the shared secret; null makes one up. */
  secret: string | null;
  /** SEATABLE_STANDIN_SCRIPT_URL_BASE: scheme and host put into `script_url`s. */
  scriptUrlBase: string | null;
  /** SEATABLE_STANDIN_URL_FILE: where to write the URL once listening (for scripts). */
  urlFile: string | null;
  /** SEATABLE_STANDIN_LOG_LEVEL: one pino level; `debug` logs every request. */
  logLevel: (typeof logLevels)[number];
}

export class ConfigError extends Error {
  override name = 'ConfigError';
}

/** Reads the stand-in's settings; every bad variable is reported on a line of its own. */
export function loadConfig(env: NodeJS.ProcessEnv = process.env): StandinConfig {
  const problems: string[] = [];
  const text = (name: string) => {
    const value = env[name]?.trim();
    return value ? value : null;
  };

  const port = text('SEATABLE_STANDIN_PORT') ?? '0';
  if (!/^\d+$/.test(port) || Number(port) > 65535) {
    problems.push(`SEATABLE_STANDIN_PORT: must be a port number (0-65535), got "${port}"`);
  }
  const scriptUrlBase = text('SEATABLE_STANDIN_SCRIPT_URL_BASE');
  if (scriptUrlBase && !/^https?:\/\/[^/]+\/?$/.test(scriptUrlBase)) {
    problems.push(
      `SEATABLE_STANDIN_SCRIPT_URL_BASE: must be a scheme and host such as http://host:port, got "${scriptUrlBase}"`,
    );
  }
  const logLevel = text('SEATABLE_STANDIN_LOG_LEVEL') ?? 'info';
  if (!(logLevels as readonly string[]).includes(logLevel)) {
    problems.push(
      `SEATABLE_STANDIN_LOG_LEVEL: must be one of ${logLevels.join(', ')}, got "${logLevel}"`,
    );
  }
  if (problems.length > 0) throw new ConfigError(problems.join('\n'));

  return {
    host: text('SEATABLE_STANDIN_HOST') ?? '127.0.0.1',
    port: Number(port),
    secret: text('PYTHON_SCHEDULER_AUTH_TOKEN'),
    scriptUrlBase,
    urlFile: text('SEATABLE_STANDIN_URL_FILE'),
    logLevel: logLevel as StandinConfig['logLevel'],
  };
}
