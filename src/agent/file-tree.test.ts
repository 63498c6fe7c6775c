import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { linkSync, mkdirSync, mkdtempSync, readdirSync, rmSync, symlinkSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, describe, it } from 'node:test';
import { fileTreeTar, fileTreeTotals, pseudoMountPoints } from './file-tree.ts';

describe('file tree', () => {
  const dir = mkdtempSync(join(tmpdir(), 'ferry-tree-'));
  after(() => rmSync(dir, { recursive: true, force: true }));

  it('finds pseudo filesystem mount points in mountinfo, octal escapes decoded', () => {
    const mountInfo = join(dir, 'mountinfo');
    writeFileSync(
      mountInfo,
      [
        '22 1 8:1 / / rw,relatime shared:1 - ext4 /dev/sda1 rw',
        '23 22 0:21 / /proc rw,nosuid shared:12 - proc proc rw',
        '24 22 0:22 / /sys rw,nosuid shared:7 - sysfs sysfs rw',
        '25 22 0:5 / /srv/root/dev rw,nosuid shared:2 - devtmpfs udev rw',
        '26 22 0:23 / /srv/with\\040space rw - tmpfs tmpfs rw',
        '27 22 8:2 / /home rw,relatime - ext4 /dev/sda2 rw',
      ].join('\n'),
    );
    assert.deepEqual(pseudoMountPoints(mountInfo), ['/proc', '/sys', '/srv/root/dev', '/srv/with space']);
    assert.deepEqual(pseudoMountPoints(join(dir, 'missing')), []);
  });

  it('archives the tree with mounted pseudo filesystems emptied and the agent state left out', async () => {
    const root = join(dir, 'root');
    mkdirSync(join(root, 'proc/1'), { recursive: true });
    writeFileSync(join(root, 'proc/1/status'), 'kernel state\n');
    mkdirSync(join(root, 'var/lib/agent'), { recursive: true });
    writeFileSync(join(root, 'var/lib/agent/state.json'), '{"accessKeySecret":"s"}');
    writeFileSync(join(root, 'data'), 'x'.repeat(1000));
    linkSync(join(root, 'data'), join(root, 'data-link'));
    symlinkSync('data', join(root, 'alias'));
    const options = { skipContentsOf: [join(root, 'proc')], exclude: [join(root, 'var/lib/agent')] };

    const totals = await fileTreeTotals(root, options);
    // alias, data, data-link, proc, var, var/lib; the hard link's bytes once.
    assert.deepEqual(totals, { entries: 6, contentBytes: 1000 });

    const tarPath = join(dir, 'root.tar');
    const parts: Buffer[] = [];
    for await (const part of fileTreeTar(root, options)) parts.push(part);
    writeFileSync(tarPath, Buffer.concat(parts));
    const listed = execFileSync('tar', ['-tvf', tarPath], { encoding: 'utf8' }).trim().split('\n');
    assert.deepEqual(listed.map((l) => l.split(/\s+/).slice(5).join(' ')), ['alias -> data', 'data', 'data-link link to data', 'proc/', 'var/', 'var/lib/']);
    const out = join(dir, 'out');
    mkdirSync(out);
    execFileSync('tar', ['-xf', tarPath, '-C', out]);
    assert.deepEqual(readdirSync(join(out, 'proc')), []);
  });
});
