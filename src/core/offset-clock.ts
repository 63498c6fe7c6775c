import { readFileSync } from 'node:fs';
import { type Clock, systemClock } from './clock.ts';

/**
 * Testing aid: system time plus a millisecond offset read from a file on every call, so a test
 * can make a real `ferry serve` see a schedule or an expiry as due without waiting days. The only
 * file read in core, and only when FERRY_CLOCK_OFFSET_FILE is set; move the offset forward only.
 */
export class OffsetFileClock implements Clock {
  readonly path: string;

  constructor(path: string) {
    this.path = path;
  }

  nowMs(): number {
    return Date.now() + readOffsetMs(this.path);
  }
}

/** A missing or unreadable file means no offset: the test has not moved time yet. */
function readOffsetMs(path: string): number {
  try {
    const value = Number(readFileSync(path, 'utf8').trim());
    return Number.isFinite(value) ? value : 0;
  } catch {
    return 0;
  }
}

/** The node's clock: the system clock, or an OffsetFileClock when FERRY_CLOCK_OFFSET_FILE names a file. */
export function clockFromEnv(env: NodeJS.ProcessEnv = process.env): Clock {
  const path = env['FERRY_CLOCK_OFFSET_FILE'];
  return path === undefined || path === '' ? systemClock : new OffsetFileClock(path);
}
