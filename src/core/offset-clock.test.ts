import assert from 'node:assert/strict';
import { mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, it } from 'node:test';
import { systemClock } from './clock.ts';
import { OffsetFileClock, clockFromEnv } from './offset-clock.ts';

const dir = mkdtempSync(join(tmpdir(), 'ferry-clock-'));
after(() => rmSync(dir, { recursive: true, force: true }));

it('adds the offset in the file, re-read on every call, and none without a file', () => {
  const file = join(dir, 'offset');
  const clock = clockFromEnv({ FERRY_CLOCK_OFFSET_FILE: file });
  assert.ok(clock instanceof OffsetFileClock);
  assert.ok(Math.abs(clock.nowMs() - Date.now()) < 1000, 'no file yet: no offset');
  writeFileSync(file, String(7 * 86_400_000));
  assert.ok(Math.abs(clock.nowMs() - Date.now() - 7 * 86_400_000) < 1000);
  writeFileSync(file, 'garbage');
  assert.ok(Math.abs(clock.nowMs() - Date.now()) < 1000, 'unreadable offset: none');
  assert.equal(clockFromEnv({}), systemClock);
});
