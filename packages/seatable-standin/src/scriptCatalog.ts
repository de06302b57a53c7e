import { randomBytes } from 'node:crypto';
import { canonicalUuid } from '@pipeline/events';

/** A script stored in a base, as SeaTable keeps it. */
export interface StandinScript {
  /** The base's uuid, in any of its forms (with or without dashes, any case). */
  dtableUuid: string;
  /** The script's file name, exactly as SeaTable sends it in `script_name`. */
  scriptName: string;
  /** The source; bytes are served as they are. */
  source: string | Uint8Array;
}

/** One answer of `task/file/`: a download link minted for one run, as SeaTable does. */
export interface IssuedScriptFile {
  /** The last path segment of `scriptUrl`. */
  runKey: string;
  dtableUuid: string;
  scriptName: string;
  scriptUrl: string;
  tempApiToken: string;
  issuedAt: Date;
  /** How many times the source was downloaded through this link. */
  fetches: number;
  /** The source as it was when the link was minted. */
  source: Buffer;
}

/** Who a monthly run limit belongs to. */
export type LimitOwner = { username: string } | { orgId: number };

/** The stand-in's memory: scripts per base, run limits, and the links it handed out. */
export class ScriptCatalog {
  readonly #scripts = new Map<string, Buffer>();
  readonly #issued = new Map<string, IssuedScriptFile>();
  readonly #userLimits = new Map<string, number>();
  readonly #orgLimits = new Map<number, number>();

  setScript(script: StandinScript): void {
    const source =
      typeof script.source === 'string'
        ? Buffer.from(script.source, 'utf8')
        : Buffer.from(script.source);
    this.#scripts.set(scriptKey(requireUuid(script.dtableUuid), script.scriptName), source);
  }

  removeScript(dtableUuid: string, scriptName: string): boolean {
    return this.#scripts.delete(scriptKey(requireUuid(dtableUuid), scriptName));
  }

  /** Mints a link for the script, or null when the base has no such script. */
  issue(dtableUuid: string, scriptName: string, fileUrlBase: string): IssuedScriptFile | null {
    const source = this.#scripts.get(scriptKey(dtableUuid, scriptName));
    if (!source) return null;
    const runKey = randomBytes(16).toString('hex');
    const issued: IssuedScriptFile = {
      runKey,
      dtableUuid,
      scriptName,
      scriptUrl: `${fileUrlBase}/files/${runKey}`,
      tempApiToken: randomBytes(20).toString('hex'),
      issuedAt: new Date(),
      fetches: 0,
      source,
    };
    this.#issued.set(runKey, issued);
    return issued;
  }

  issuedFile(runKey: string): IssuedScriptFile | undefined {
    return this.#issued.get(runKey);
  }

  issuedFiles(): IssuedScriptFile[] {
    return [...this.#issued.values()];
  }

  /** Downloads through one link (a run key), or through every link of a script name. */
  fetchCount(runKeyOrScriptName: string): number {
    const byKey = this.#issued.get(runKeyOrScriptName);
    if (byKey) return byKey.fetches;
    let total = 0;
    for (const issued of this.#issued.values()) {
      if (issued.scriptName === runKeyOrScriptName) total += issued.fetches;
    }
    return total;
  }

  setRunningLimit(owner: LimitOwner, limit: number): void {
    if (!Number.isInteger(limit) || limit < -1) {
      throw new Error(`a running limit is an integer of -1 or more, got ${limit}`);
    }
    if ('orgId' in owner) this.#orgLimits.set(owner.orgId, limit);
    else this.#userLimits.set(owner.username, limit);
  }

  /** The monthly limit; -1 (unlimited) for an owner without one. */
  runningLimit(owner: LimitOwner): number {
    const limit =
      'orgId' in owner ? this.#orgLimits.get(owner.orgId) : this.#userLimits.get(owner.username);
    return limit ?? -1;
  }
}

function scriptKey(canonicalBaseUuid: string, scriptName: string): string {
  return `${canonicalBaseUuid}\u0000${scriptName}`;
}

function requireUuid(value: string): string {
  const canonical = canonicalUuid(value);
  if (!canonical) throw new Error(`not a base uuid: "${value}"`);
  return canonical;
}
