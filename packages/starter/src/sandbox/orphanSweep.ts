import type { Logger } from 'pino';
import { type ListedContainer, type SandboxRuntime, shortId } from './sandboxRuntime.ts';

/**
 * Removes the containers an earlier life of this starter left behind (it crashed or was
 * killed mid-run): they carry its starter id label. Their runs end as lost through the
 * scheduler's watchdog, never by running them again. Returns how many were removed.
 */
export async function removeOrphans(
  sandbox: SandboxRuntime,
  labels: Record<string, string>,
  log: Logger,
): Promise<number> {
  return await removeAll(sandbox, await sandbox.listByLabels(labels), log);
}

/**
 * Removes the pipeline's containers on this engine whose starter is not in the fleet any
 * more (no heartbeat within the bucket's TTL). A starter restarted without a fixed
 * STARTER_ID gets a new id, so its earlier life's containers are found only this way; left
 * alone, a script in an endless loop would run there for ever. `alive` holds the starter
 * ids that have a heartbeat now.
 */
export async function removeDepartedStartersContainers(
  sandbox: SandboxRuntime,
  pipelineLabels: Record<string, string>,
  starterIdLabel: string,
  alive: ReadonlySet<string>,
  log: Logger,
): Promise<number> {
  const containers = await sandbox.listByLabels(pipelineLabels);
  const departed = containers.filter((container) => {
    const starterId = container.labels[starterIdLabel];
    return starterId !== undefined && !alive.has(starterId);
  });
  return await removeAll(sandbox, departed, log);
}

async function removeAll(
  sandbox: SandboxRuntime,
  containers: ListedContainer[],
  log: Logger,
): Promise<number> {
  let removed = 0;
  for (const container of containers) {
    const ids = { runId: container.runId, containerId: shortId(container.id) };
    try {
      await sandbox.remove(container);
      removed++;
      log.warn(ids, 'orphan container removed');
    } catch (error) {
      log.error({ ...ids, err: error }, 'orphan container not removed');
    }
  }
  return removed;
}
