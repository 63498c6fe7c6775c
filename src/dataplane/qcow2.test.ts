import assert from 'node:assert/strict';
import { existsSync, mkdtempSync, openSync, rmSync, writeSync, closeSync, statSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { checkQcow2, compareImages, convertRawToQcow2, findQemuImg, imageInfo } from './qcow2.ts';
import { writeTestDisk } from './test-disk.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'ferry-qcow2-'));
const raw = join(dir, 'disk.raw');
after(() => rmSync(dir, { recursive: true, force: true }));

before(async () => {
  // Fails the suite with the install hint rather than skipping: untested qcow2 export is a bug.
  await findQemuImg();
  await writeTestDisk(raw, { sizeBytes: 32 * MiB, seed: 5 });
});

test('a raw image converts to a qcow2 image that checks clean and compares equal', async () => {
  const qcow2 = join(dir, 'disk.qcow2');
  await convertRawToQcow2(raw, qcow2);
  assert.equal(existsSync(`${qcow2}.part`), false);
  const check = await checkQcow2(qcow2);
  assert.deepEqual(check, { ok: true, corruptions: 0, leaks: 0, checkErrors: 0 });
  const info = await imageInfo({ path: qcow2, format: 'qcow2' });
  assert.equal(info.format, 'qcow2');
  assert.equal(info.virtualSizeBytes, 32 * MiB);
  assert.ok(info.actualSizeBytes < statSync(raw).size, 'holes and zeros stay unallocated');
  assert.equal(await compareImages({ path: raw, format: 'raw' }, { path: qcow2, format: 'qcow2' }), true);
});

test('compare sees a single changed byte', async () => {
  const qcow2 = join(dir, 'before-change.qcow2');
  await convertRawToQcow2(raw, qcow2, { compressed: true });
  const fd = openSync(raw, 'r+');
  writeSync(fd, Buffer.from([0x5a]), 0, 1, 17 * MiB + 3);
  closeSync(fd);
  assert.equal(await compareImages({ path: raw, format: 'raw' }, { path: qcow2, format: 'qcow2' }), false);
});

test('a file that is not qcow2 fails the check with qemu-img\'s reason', async () => {
  await assert.rejects(checkQcow2(raw), { name: 'DataPlaneError', code: 'QemuImgFailed' });
});

test('a failed conversion leaves no partial file behind', async () => {
  const target = join(dir, 'missing-source.qcow2');
  await assert.rejects(convertRawToQcow2(join(dir, 'nope.raw'), target), { code: 'QemuImgFailed' });
  assert.equal(existsSync(target), false);
  assert.equal(existsSync(`${target}.part`), false);
});

test('without qemu-img on PATH the error says how to install it', async () => {
  const path = process.env['PATH'];
  process.env['PATH'] = dir;
  try {
    await assert.rejects(findQemuImg(), { code: 'QemuImgMissing', message: /qemu-utils.*install-test-deps\.sh/ });
  } finally {
    process.env['PATH'] = path;
  }
});
