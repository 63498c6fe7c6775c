import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { TarFormatError, scanTar } from './tar-reader.ts';
import { tarEnd, tarHeader, tarPadding } from './tar-writer.ts';

describe('tar reader', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tar-scan-'));
  after(() => rmSync(dir, { recursive: true, force: true }));
  const base = { uid: 0, gid: 0, mode: 0o644, mtimeMs: 1_600_000_000_500 };
  const content = Buffer.from('hello\n');
  const good = Buffer.concat([
    tarHeader({ ...base, path: 'etc/', type: 'dir', sizeBytes: 0 }),
    tarHeader({ ...base, path: `etc/${'long'.repeat(40)}`, type: 'file', sizeBytes: content.length }),
    content,
    tarPadding(content.length),
    tarHeader({ ...base, path: 'etc/again', type: 'hardlink', sizeBytes: 0, linkTarget: `etc/${'long'.repeat(40)}` }),
    tarEnd(),
  ]);

  function scan(bytes: Buffer): ReturnType<typeof scanTar> {
    const path = join(dir, `t${Math.random().toString(16).slice(2)}.tar`);
    writeFileSync(path, bytes);
    return scanTar(path);
  }

  it('counts the entries and content of a well-formed archive, as GNU tar does', async () => {
    assert.deepEqual(await scan(good), { entries: 3, contentBytes: content.length });
    const gnu = join(dir, 'gnu');
    mkdirSync(join(gnu, 'src/sub'), { recursive: true });
    writeFileSync(join(gnu, 'src/sub/a'), 'abc');
    execFileSync('tar', ['-cf', join(gnu, 'x.tar'), '--format=pax', '-C', join(gnu, 'src'), '.']);
    assert.deepEqual(await scanTar(join(gnu, 'x.tar')), { entries: 3, contentBytes: 3 });
  });

  it('refuses a wrong checksum, a PAX record that miscounts itself, and a missing end', async () => {
    const flipped = Buffer.from(good);
    flipped[5] = 0x41;
    await assert.rejects(scan(flipped), (err: unknown) => err instanceof TarFormatError && /checksum/.test(err.message));
    // The first entry has a PAX header (its mtime has a fraction) whose data block starts at 512: make its length one too many.
    const miscounted = Buffer.from(good);
    const length = Number(miscounted.toString('latin1', 512, miscounted.indexOf(0x20, 512)));
    miscounted.write(String(length + 1), 512, 'latin1');
    await assert.rejects(scan(miscounted), (err: unknown) => err instanceof TarFormatError && /PAX record/.test(err.message));
    await assert.rejects(scan(good.subarray(0, good.length - 1024)), /two zero blocks/);
  });
});
