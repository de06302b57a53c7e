import type { Logger } from 'pino';
import type { RetentionConfig, StreamConfig } from '../config.ts';

/**
 * What the log would forget that the read model still shows, one sentence each; empty when
 * the log keeps at least as long as the tables (`PIPELINE_STREAM_MAX_AGE_DAYS` 0, the default,
 * keeps it for ever). A rebuild can only restore what the log still holds.
 */
export function retentionWarnings(
  stream: Pick<StreamConfig, 'maxAgeSeconds' | 'maxBytes'>,
  retention: RetentionConfig,
): string[] {
  const warnings: string[] = [];
  const streamDays = stream.maxAgeSeconds / 86_400;
  if (stream.maxAgeSeconds > 0 && streamDays < retention.logDays) {
    warnings.push(
      `the log keeps events ${formatDays(streamDays)} days (PIPELINE_STREAM_MAX_AGE_DAYS) but the run logs stay ${retention.logDays} days (DELETE_LOG_DAYS): ` +
        `a rebuild would lose the runs older than ${formatDays(streamDays)} days`,
    );
  }
  if (stream.maxAgeSeconds > 0 && streamDays < retention.statisticsDays) {
    warnings.push(
      `the log keeps events ${formatDays(streamDays)} days (PIPELINE_STREAM_MAX_AGE_DAYS) but the statistics stay ${retention.statisticsDays} days (DELETE_STATISTICS_DAYS): ` +
        `a rebuild would lose the statistics of the days older than ${formatDays(streamDays)} days`,
    );
  }
  if (stream.maxBytes > 0) {
    warnings.push(
      `the log is capped at ${stream.maxBytes} bytes (PIPELINE_STREAM_MAX_BYTES): once full it drops its oldest events whatever their age, ` +
        'and a rebuild would lose the runs and statistics of those events',
    );
  }
  return warnings;
}

/** Logs each retention warning at start-up, one line each. */
export function checkStreamRetention(
  stream: Pick<StreamConfig, 'maxAgeSeconds' | 'maxBytes'>,
  retention: RetentionConfig,
  logger: Logger,
): void {
  for (const warning of retentionWarnings(stream, retention)) {
    logger.warn({ stream, retention }, warning);
  }
}

function formatDays(days: number): string {
  return Number.isInteger(days) ? String(days) : days.toFixed(2);
}
