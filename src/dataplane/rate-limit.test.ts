import assert from 'node:assert/strict';
import { test } from 'node:test';
import { ManualClock } from '../core/clock.ts';
import { bucketForMbps, mbpsToBytesPerSec, TokenBucket } from './rate-limit.ts';

/** A bucket on a manual clock whose sleeps move the clock instead of waiting. */
function manualBucket(bytesPerSec: number, burstBytes?: number): { bucket: TokenBucket; clock: ManualClock } {
  const clock = new ManualClock(0);
  const sleep = (ms: number, signal?: AbortSignal): Promise<void> => {
    signal?.throwIfAborted();
    clock.advance(ms);
    return Promise.resolve();
  };
  return { bucket: new TokenBucket({ bytesPerSec, clock, sleep, ...(burstBytes === undefined ? {} : { burstBytes }) }), clock };
}

test('bandwidth_limit is in Mbit/s: 8 Mbit/s is 1,000,000 bytes/s, and 0 means unlimited', () => {
  assert.equal(mbpsToBytesPerSec(8), 1_000_000);
  assert.equal(bucketForMbps(0), undefined);
  assert.equal(bucketForMbps(80)?.bytesPerSec, 10_000_000);
  assert.throws(() => bucketForMbps(-1), RangeError);
});

test('a saturated sender stays within 5% of the rate over every 10 s window', async () => {
  const rate = 1_250_000; // 10 Mbit/s
  const { bucket, clock } = manualBucket(rate);
  const sent: { atMs: number; total: number }[] = [{ atMs: 0, total: 0 }];
  let total = 0;
  while (clock.nowMs() < 60_000) {
    // Uneven slices no larger than the burst (0.1 s of traffic), as FrameWriter cuts frames.
    const bytes = [64 * 1024, 125_000, 41, 100_000][sent.length % 4] ?? 1;
    await bucket.take(bytes);
    total += bytes;
    sent.push({ atMs: clock.nowMs(), total });
  }
  for (let startMs = 0; startMs <= 50_000; startMs += 250) {
    const before = sent.filter((s) => s.atMs <= startMs).at(-1)?.total ?? 0;
    const within = (sent.filter((s) => s.atMs <= startMs + 10_000).at(-1)?.total ?? 0) - before;
    const ratio = within / (rate * 10);
    assert.ok(ratio <= 1.05 && ratio >= 0.95, `window at ${startMs} ms carried ${ratio.toFixed(3)}x the limit`);
  }
});

test('an idle bucket lets one burst through at once, then paces, also inside one large take', async () => {
  const { bucket, clock } = manualBucket(100_000, 10_000);
  await bucket.take(10_000);
  assert.equal(clock.nowMs(), 0);
  await bucket.take(50_000);
  assert.equal(clock.nowMs(), 500);
});

test('a wait ends with the abort reason when the signal aborts', async () => {
  const bucket = new TokenBucket({ bytesPerSec: 1000, burstBytes: 1000 });
  await bucket.take(1000);
  const controller = new AbortController();
  const waiting = bucket.take(10_000, controller.signal);
  setTimeout(() => controller.abort(new Error('cancelled by user')), 20);
  await assert.rejects(waiting, /cancelled by user/);
  // The bucket still serves later callers.
  await bucket.take(1);
});
