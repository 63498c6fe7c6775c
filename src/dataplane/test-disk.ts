/**
 * Synthetic disk images for tests and benchmarks, after BASELINES' gen-image.mjs: segments of
 * 64 KiB-8 MiB of random bytes, log-like text, repeated 4 KiB patterns, written zeros and holes.
 * The layout and text follow `seed`; random segments use crypto random bytes.
 */
import { randomFillSync } from 'node:crypto';
import { open } from 'node:fs/promises';

export type SegmentKind = 'random' | 'text' | 'pattern' | 'zeros' | 'hole';

export interface Segment {
  readonly kind: SegmentKind;
  readonly offsetBytes: number;
  readonly lengthBytes: number;
}

const segmentUnitBytes = 64 * 1024;
const segmentUnits = [1, 2, 4, 8, 16, 16, 32, 64, 128] as const;

/** A small seeded PRNG (mulberry32) returning floats in [0, 1). */
function seededRandom(seed: number): () => number {
  let a = seed | 0;
  return () => {
    a = (a + 0x6d2b79f5) | 0;
    let t = Math.imul(a ^ (a >>> 15), 1 | a);
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t;
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

function textPool(rnd: () => number, bytes: number): Buffer {
  const words = Array.from({ length: 400 }, () =>
    Array.from({ length: 2 + Math.floor(rnd() * 9) }, () => String.fromCharCode(97 + Math.floor(rnd() * 26))).join(''),
  );
  const pick = (): string => words[Math.floor(rnd() * words.length)] ?? 'x';
  const levels = ['INFO', 'INFO', 'INFO', 'DEBUG', 'WARN', 'ERROR'];
  const lines: string[] = [];
  let size = 0;
  let t = Date.UTC(2026, 0, 1);
  while (size < bytes) {
    t += Math.floor(rnd() * 50);
    const line = `${new Date(t).toISOString()} ${levels[Math.floor(rnd() * levels.length)] ?? 'INFO'} [svc-${Math.floor(rnd() * 16)}] user=${pick()} latency=${Math.floor(rnd() * 900)}ms msg="${pick()} ${pick()} ${pick()}"\n`;
    lines.push(line);
    size += line.length;
  }
  return Buffer.from(lines.join(''), 'latin1');
}

function chooseKind(rnd: () => number): SegmentKind {
  const r = rnd();
  if (r < 0.45) return 'random';
  if (r < 0.63) return 'hole';
  if (r < 0.7) return 'zeros';
  if (r < 0.93) return 'text';
  return 'pattern';
}

/**
 * Write a `sizeBytes` test disk at `path` (replacing any file there); holes are left unwritten.
 * Returns the segments in offset order.
 */
export async function writeTestDisk(path: string, options: { readonly sizeBytes: number; readonly seed?: number }): Promise<Segment[]> {
  const rnd = seededRandom(options.seed ?? 1);
  const pool = textPool(rnd, 4 * 1024 * 1024);
  const fh = await open(path, 'w');
  const segments: Segment[] = [];
  try {
    const maxBytes = segmentUnitBytes * Math.max(...segmentUnits);
    const buf = Buffer.allocUnsafe(maxBytes);
    for (let offsetBytes = 0; offsetBytes < options.sizeBytes; ) {
      const kind = chooseKind(rnd);
      const units = segmentUnits[Math.floor(rnd() * segmentUnits.length)] ?? 1;
      const lengthBytes = Math.min(units * segmentUnitBytes, options.sizeBytes - offsetBytes);
      const data = buf.subarray(0, lengthBytes);
      if (kind === 'random') randomFillSync(data);
      else if (kind === 'zeros') data.fill(0);
      else if (kind === 'pattern') {
        randomFillSync(data, 0, Math.min(4096, lengthBytes));
        for (let at = 4096; at < lengthBytes; at += 4096) data.copy(data, at, 0, Math.min(4096, lengthBytes - at));
      } else if (kind === 'text') {
        for (let at = 0; at < lengthBytes; ) {
          const from = Math.floor(rnd() * (pool.length - segmentUnitBytes));
          at += pool.copy(data, at, from, from + Math.min(segmentUnitBytes, lengthBytes - at));
        }
      }
      if (kind !== 'hole') await fh.write(data, 0, lengthBytes, offsetBytes);
      segments.push({ kind, offsetBytes, lengthBytes });
      offsetBytes += lengthBytes;
    }
    await fh.truncate(options.sizeBytes);
    await fh.sync();
  } finally {
    await fh.close();
  }
  return segments;
}

/**
 * Overwrite about `fraction` of the disk, in place, with random bytes in scattered,
 * block-aligned blocks of `blockBytes` (default 64 KiB). Returns the offsets written, sorted.
 */
export async function mutateTestDisk(
  path: string,
  options: { readonly fraction: number; readonly blockBytes?: number; readonly seed?: number },
): Promise<number[]> {
  const blockBytes = options.blockBytes ?? segmentUnitBytes;
  const rnd = seededRandom(options.seed ?? 7);
  const fh = await open(path, 'r+');
  try {
    const { size } = await fh.stat();
    const blocks = Math.floor(size / blockBytes);
    const wanted = Math.max(1, Math.round((size * options.fraction) / blockBytes));
    const chosen = new Set<number>();
    while (chosen.size < Math.min(wanted, blocks)) chosen.add(Math.floor(rnd() * blocks));
    const offsets = [...chosen].sort((a, b) => a - b).map((block) => block * blockBytes);
    const buf = Buffer.allocUnsafe(blockBytes);
    for (const offset of offsets) {
      randomFillSync(buf);
      await fh.write(buf, 0, blockBytes, offset);
    }
    await fh.sync();
    return offsets;
  } finally {
    await fh.close();
  }
}
