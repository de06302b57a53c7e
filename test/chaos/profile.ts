/**
 * How hard and how long the chaos experiments push (`CHAOS_PROFILE`): `short` for CI, a few
 * minutes in all; `full` on demand, with the one-minute database outage of issue #6.
 */
export interface ChaosProfile {
  name: 'short' | 'full';
  /** Submissions per second of the background load. */
  ratePerSecond: number;
  /** Load before each fault, and after it before the load stops. */
  loadBeforeMs: number;
  loadAfterMs: number;
  natsDownMs: number;
  databaseDownMs: number;
  engineDownMs: number;
  /** How long the runs may take to end once the load has stopped. */
  drainMs: number;
  /** Whether the Docker engine restart runs (`CHAOS_ENGINE_RESTART=0` leaves it out). */
  engineRestart: boolean;
}

const profiles: Record<ChaosProfile['name'], ChaosProfile> = {
  short: {
    name: 'short',
    ratePerSecond: 3,
    loadBeforeMs: 4_000,
    loadAfterMs: 6_000,
    natsDownMs: 3_000,
    databaseDownMs: 15_000,
    engineDownMs: 1_000,
    drainMs: 180_000,
    engineRestart: true,
  },
  full: {
    name: 'full',
    ratePerSecond: 6,
    loadBeforeMs: 15_000,
    loadAfterMs: 20_000,
    natsDownMs: 10_000,
    databaseDownMs: 60_000,
    engineDownMs: 5_000,
    drainMs: 300_000,
    engineRestart: true,
  },
};

export function chaosProfile(env: NodeJS.ProcessEnv = process.env): ChaosProfile {
  const name = env.CHAOS_PROFILE ?? 'short';
  const profile = profiles[name as ChaosProfile['name']];
  if (!profile) throw new Error(`CHAOS_PROFILE: must be short or full, got "${name}"`);
  const engineRestart = env.CHAOS_ENGINE_RESTART;
  if (engineRestart === undefined || engineRestart === '') return profile;
  if (engineRestart !== '0' && engineRestart !== '1') {
    throw new Error(`CHAOS_ENGINE_RESTART: must be 0 or 1, got "${engineRestart}"`);
  }
  return { ...profile, engineRestart: engineRestart === '1' };
}
