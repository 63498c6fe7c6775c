export interface BackoffPolicy {
  /** Delay before the second attempt, in ms; doubles for each later one. */
  readonly baseMs: number;
  readonly maxMs: number;
  /** Fraction of the delay added or removed at random, so retries of many jobs spread out. */
  readonly jitter: number;
}

export const defaultBackoff: BackoffPolicy = { baseMs: 1_000, maxMs: 5 * 60_000, jitter: 0.2 };

/** Delay in ms before the next try, after `attempts` tries have failed (attempts >= 1). */
export function backoffDelayMs(policy: BackoffPolicy, attempts: number, random: () => number = Math.random): number {
  const exponent = Math.max(0, attempts - 1);
  const raw = Math.min(policy.maxMs, policy.baseMs * 2 ** Math.min(exponent, 30));
  const spread = raw * policy.jitter * (random() * 2 - 1);
  return Math.max(0, Math.round(raw + spread));
}
