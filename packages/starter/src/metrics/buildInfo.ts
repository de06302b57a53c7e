import packageJson from '../../package.json' with { type: 'json' };

/**
 * The version this starter runs: `PIPELINE_VERSION`, which the image sets from its release tag
 * (deploy/starter.Dockerfile, build argument `VERSION`), or the package's own version when it
 * runs from a checkout. `/healthz` and `pipeline_build_info` show it.
 */
export function runningVersion(env: Record<string, string | undefined> = process.env): string {
  const fromImage = env.PIPELINE_VERSION?.trim();
  return fromImage ? fromImage : packageJson.version;
}
