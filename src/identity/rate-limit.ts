import type { Clock } from '../core/clock.ts';

/** A token bucket: `ratePerSecond` tokens a second, holding at most `burst`. */
export class TokenBucket {
  #tokens: number;
  #updatedMs: number;

  constructor(
    readonly ratePerSecond: number,
    readonly burst: number,
    private readonly clock: Clock,
  ) {
    this.#tokens = burst;
    this.#updatedMs = clock.nowMs();
  }

  /** Take one token if there is one. */
  tryTake(): boolean {
    const now = this.clock.nowMs();
    this.#tokens = Math.min(this.burst, this.#tokens + ((now - this.#updatedMs) / 1000) * this.ratePerSecond);
    this.#updatedMs = now;
    if (this.#tokens < 1) return false;
    this.#tokens -= 1;
    return true;
  }
}

export interface RateLimits {
  /** Requests per second per access key (Throttling.User). */
  readonly userPerSecond: number;
  readonly userBurst: number;
  /** Requests per second per action, across all keys (Throttling.Api). */
  readonly apiPerSecond: number;
  readonly apiBurst: number;
}

export const defaultRateLimits: RateLimits = { userPerSecond: 200, userBurst: 400, apiPerSecond: 1_000, apiBurst: 2_000 };

/** Per-node request limits. Buckets are created on first use and kept for at most `maxBuckets` keys. */
export class RequestLimiter {
  readonly #users = new Map<string, TokenBucket>();
  readonly #apis = new Map<string, TokenBucket>();

  constructor(
    readonly limits: RateLimits,
    private readonly clock: Clock,
    private readonly maxBuckets = 100_000,
  ) {}

  /** Which limit the request hits, if any; a refused request takes no token from the other bucket. */
  check(accessKeyId: string, action: string): 'user' | 'api' | undefined {
    const user = this.#bucket(this.#users, accessKeyId, this.limits.userPerSecond, this.limits.userBurst);
    if (!user.tryTake()) return 'user';
    const api = this.#bucket(this.#apis, action, this.limits.apiPerSecond, this.limits.apiBurst);
    if (!api.tryTake()) return 'api';
    return undefined;
  }

  #bucket(map: Map<string, TokenBucket>, key: string, rate: number, burst: number): TokenBucket {
    let bucket = map.get(key);
    if (bucket === undefined) {
      if (map.size >= this.maxBuckets) map.clear();
      bucket = new TokenBucket(rate, burst, this.clock);
      map.set(key, bucket);
    }
    return bucket;
  }
}
