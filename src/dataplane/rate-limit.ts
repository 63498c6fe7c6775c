/**
 * Token bucket for SMC's `bandwidth_limit`. The bucket holds at most `burstBytes`, so any window
 * of T seconds passes at most `burstBytes + bytesPerSec * T`: with the default burst of 0.1 s of
 * traffic that is within 1 % of the limit over 10 s. Callers take tokens for each slice before
 * writing it, and slices are at most `burstBytes`, so a 4 MiB chunk on a slow link goes out paced,
 * not in one burst.
 */
import { type Clock, sleep as realSleep } from '../core/clock.ts';

export interface TokenBucketOptions {
  readonly bytesPerSec: number;
  /** Largest burst; default 0.1 s of traffic, at least 16 KiB. */
  readonly burstBytes?: number;
  /** Default: a monotonic clock (performance.now), immune to wall-clock steps. */
  readonly clock?: Clock;
  /** Default: core's sleep; tests pass one that advances a ManualClock. */
  readonly sleep?: (ms: number, signal?: AbortSignal) => Promise<void>;
}

/** Epoch-based milliseconds that never step backwards. */
export const monotonicClock: Clock = { nowMs: () => performance.timeOrigin + performance.now() };

/** Bytes per second for a limit in Mbit/s (1 Mbit/s = 125,000 bytes/s, decimal as network rates are). */
export function mbpsToBytesPerSec(mbps: number): number {
  return (mbps * 1_000_000) / 8;
}

export class TokenBucket {
  readonly bytesPerSec: number;
  readonly burstBytes: number;
  readonly #clock: Clock;
  readonly #sleep: (ms: number, signal?: AbortSignal) => Promise<void>;
  #tokens: number;
  #lastMs: number;
  #tail: Promise<void> = Promise.resolve();

  constructor(options: TokenBucketOptions) {
    if (!(options.bytesPerSec > 0) || !Number.isFinite(options.bytesPerSec)) {
      throw new RangeError(`bytesPerSec must be a positive number, got ${options.bytesPerSec}`);
    }
    this.bytesPerSec = options.bytesPerSec;
    this.burstBytes = Math.max(1, Math.floor(options.burstBytes ?? Math.max(16 * 1024, options.bytesPerSec / 10)));
    this.#clock = options.clock ?? monotonicClock;
    this.#sleep = options.sleep ?? realSleep;
    this.#tokens = this.burstBytes;
    this.#lastMs = this.#clock.nowMs();
  }

  /** Wait until `bytes` may be sent, then spend them. Callers are served in order. */
  take(bytes: number, signal?: AbortSignal): Promise<void> {
    const turn = this.#tail.then(() => this.#take(bytes, signal));
    this.#tail = turn.catch(() => undefined);
    return turn;
  }

  async #take(bytes: number, signal: AbortSignal | undefined): Promise<void> {
    let remaining = bytes;
    while (remaining > 0) {
      signal?.throwIfAborted();
      const want = Math.min(remaining, this.burstBytes);
      this.#refill();
      if (this.#tokens >= want) {
        this.#tokens -= want;
        remaining -= want;
        continue;
      }
      await this.#sleep(Math.max(1, Math.ceil(((want - this.#tokens) * 1000) / this.bytesPerSec)), signal);
    }
  }

  #refill(): void {
    const nowMs = this.#clock.nowMs();
    this.#tokens = Math.min(this.burstBytes, this.#tokens + ((nowMs - this.#lastMs) * this.bytesPerSec) / 1000);
    this.#lastMs = nowMs;
  }
}

/** A bucket for a `bandwidth_limit` in Mbit/s, or undefined for 0 (unlimited). */
export function bucketForMbps(mbps: number, options: Omit<TokenBucketOptions, 'bytesPerSec'> = {}): TokenBucket | undefined {
  if (!Number.isFinite(mbps) || mbps < 0) throw new RangeError(`bandwidth_limit must be a non-negative number of Mbit/s, got ${mbps}`);
  return mbps === 0 ? undefined : new TokenBucket({ ...options, bytesPerSec: mbpsToBytesPerSec(mbps) });
}
