import type { Logger } from 'pino';
import { type SandboxRuntime, shortId } from './sandboxRuntime.ts';

/**
 * Removes the containers an earlier life of this starter left behind (it crashed or was
 * killed mid-run). They carry its starter id label; their runs end as lost through the
 * scheduler's watchdog, never by running them again. Returns how many were removed.
 */
export async function removeOrphans(
  sandbox: SandboxRuntime,
  labels: Record<string, string>,
  log: Logger,
): Promise<number> {
  const orphans = await sandbox.listByLabels(labels);
  let removed = 0;
  for (const orphan of orphans) {
    try {
      await sandbox.remove(orphan);
      removed++;
      log.warn(
        { runId: orphan.runId, containerId: shortId(orphan.id) },
        'orphan container removed',
      );
    } catch (error) {
      log.error({ err: error, containerId: shortId(orphan.id) }, 'orphan container not removed');
    }
  }
  return removed;
}
