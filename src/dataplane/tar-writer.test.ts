import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { lstatSync, mkdirSync, mkdtempSync, readFileSync, readlinkSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { type TarEntry, tarEnd, tarHeader, tarPadding } from './tar-writer.ts';

/** An archive of `entries`, file contents from `contents` by path. */
function archive(entries: readonly TarEntry[], contents: ReadonlyMap<string, Buffer>): Buffer {
  const parts: Buffer[] = [];
  for (const entry of entries) {
    parts.push(tarHeader(entry));
    const data = contents.get(entry.path);
    if (data !== undefined) parts.push(data, tarPadding(data.length));
  }
  parts.push(tarEnd());
  return Buffer.concat(parts);
}

describe('tar writer', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tar-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('writes archives GNU tar extracts exactly: long and UTF-8 names, links, modes, fractional mtimes', () => {
    const base = { uid: 0, gid: 0, sizeBytes: 0 };
    const contents = new Map<string, Buffer>();
    const entries: TarEntry[] = [{ ...base, path: 'd/', type: 'dir', mode: 0o2750, mtimeMs: 1_600_000_000_000 }];
    // Names around the ustar limit and PAX records whose length gains a digit (98 + 2 -> 101).
    for (const length of [99, 100, 101, 150, 255]) {
      const path = `d/${'n'.repeat(length - 2)}`;
      contents.set(path, Buffer.from(`${length}\n`));
      entries.push({ ...base, path, type: 'file', mode: 0o640, mtimeMs: 1_600_000_000_123, sizeBytes: contents.get(path)?.length ?? 0 });
    }
    for (let pad = 80; pad < 100; pad += 1) {
      const path = `p/${'x'.repeat(pad)}/${'y'.repeat(20)}`;
      contents.set(path, Buffer.from('pax\n'));
      entries.push({ ...base, path, type: 'file', mode: 0o600, mtimeMs: 1_700_000_000_001, sizeBytes: 4 });
    }
    // A 91-byte UTF-8 name: its PAX record's body is 98 bytes, so its length field needs 3 digits (101).
    const edge = `ü${'a'.repeat(89)}`;
    contents.set(edge, Buffer.from('edge\n'));
    entries.push({ ...base, path: edge, type: 'file', mode: 0o644, mtimeMs: 1_500_000_000_000, sizeBytes: 5 });
    contents.set('ü/名前.txt', Buffer.from('utf-8\n'));
    entries.push({ ...base, path: 'ü/名前.txt', type: 'file', mode: 0o755, mtimeMs: 1_500_000_000_000, sizeBytes: 6 });
    entries.push({ ...base, path: 'link', type: 'symlink', mode: 0o777, mtimeMs: 1_500_000_000_000, linkTarget: `/${'t'.repeat(120)}` });
    entries.push({ ...base, path: 'hard', type: 'hardlink', mode: 0o755, mtimeMs: 1_500_000_000_000, linkTarget: 'ü/名前.txt' });
    const tarPath = join(dir, 'a.tar');
    writeFileSync(tarPath, archive(entries, contents));
    const out = join(dir, 'out');
    mkdirSync(out);
    execFileSync('tar', ['-xf', tarPath, '-C', out, '--no-same-owner']);

    for (const [path, data] of contents) assert.deepEqual(readFileSync(join(out, path)), data, path);
    assert.equal(lstatSync(join(out, 'd')).mode & 0o7777, 0o2750);
    assert.equal(lstatSync(join(out, 'ü/名前.txt')).mode & 0o7777, 0o755);
    assert.equal(lstatSync(join(out, `d/${'n'.repeat(148)}`)).mtimeMs, 1_600_000_000_123);
    assert.equal(readlinkSync(join(out, 'link')), `/${'t'.repeat(120)}`);
    assert.equal(lstatSync(join(out, 'hard')).ino, lstatSync(join(out, 'ü/名前.txt')).ino);
  });
});
