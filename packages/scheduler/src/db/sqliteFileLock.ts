import { mkdir, readFile, unlink, writeFile } from 'node:fs/promises';
import { hostname } from 'node:os';
import { dirname } from 'node:path';
import { StartupError } from '../messaging/streamSetup.ts';

/**
 * Makes a scheduler the only one on its SQLite file. SQLite serialises the transactions of
 * one connection, not those of several processes (admission's quota check and insert would
 * race, and a busy file fails requests), so a second scheduler on the same file stops at
 * start with one line. The lock is `<file>.lock` holding `host pid`; a lock whose process
 * is gone (a crash, a kill -9) is taken over. Resolves to the function that releases it.
 * Schedulers of the same log with files of their own are refused by `ReadModelRegistry`.
 */
export async function lockSqliteFile(file: string): Promise<() => Promise<void>> {
  const lockFile = `${file}.lock`;
  const mine = `${hostname()} ${process.pid}`;
  for (let attempt = 1; ; attempt++) {
    try {
      await mkdir(dirname(lockFile), { recursive: true });
      await writeFile(lockFile, mine, { flag: 'wx' });
      return async () => {
        if ((await readFile(lockFile, 'utf8').catch(() => '')) === mine) await unlink(lockFile);
      };
    } catch (error) {
      const { code, message } = error as NodeJS.ErrnoException;
      if (code !== 'EEXIST' || attempt > 1) {
        throw new StartupError(`PIPELINE_SQLITE_FILE: cannot write next to ${file}: ${message}`, {
          cause: error,
        });
      }
    }
    const holder = (await readFile(lockFile, 'utf8').catch(() => '')).trim();
    if (isLiveHolder(holder)) {
      throw new StartupError(
        `PIPELINE_SQLITE_FILE: ${file} is in use by another scheduler (${holder}); several schedulers need MariaDB (DB_HOST)`,
      );
    }
    await unlink(lockFile).catch(() => {});
  }
}

function isLiveHolder(holder: string): boolean {
  const [host, pid] = holder.split(' ');
  // A lock written on another host (a shared folder) cannot be checked: it counts as held.
  if (host !== hostname()) return holder !== '';
  try {
    process.kill(Number(pid), 0);
    return true;
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM';
  }
}
