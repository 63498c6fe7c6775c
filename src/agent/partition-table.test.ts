import assert from 'node:assert/strict';
import { it } from 'node:test';
import { osName } from './os-facts.ts';
import { partitionPath, partitionTableBytes, readPartitionTable } from './partition-table.ts';

const mib = 1024 * 1024;

function mbr(entries: readonly { active?: boolean; type: number; startLba: number; sectors: number }[]): Buffer {
  const head = Buffer.alloc(partitionTableBytes);
  entries.forEach((e, i) => {
    const at = 446 + i * 16;
    head[at] = e.active === true ? 0x80 : 0;
    head[at + 4] = e.type;
    head.writeUInt32LE(e.startLba, at + 8);
    head.writeUInt32LE(e.sectors, at + 12);
  });
  head.writeUInt16LE(0xaa55, 510);
  return head;
}

it('reads the primary partitions of an MBR, the active one as Boot, skipping extended containers', () => {
  const head = mbr([
    { active: true, type: 0x83, startLba: 2048, sectors: 2048 },
    { type: 0x05, startLba: 4096, sectors: 1024 },
    { type: 0x83, startLba: 6144, sectors: 4096 },
  ]);
  const table = readPartitionTable(head, '/dev/sda', 8 * mib);
  assert.equal(table.table, 'mbr');
  assert.deepEqual(table.parts, [
    { index: 0, offsetBytes: mib, sizeBytes: mib, type: 'Boot', path: '/dev/sda1' },
    { index: 1, offsetBytes: 3 * mib, sizeBytes: 2 * mib, type: 'Normal', path: '/dev/sda2' },
  ]);
});

it('reads a GPT behind its protective MBR, the EFI system partition as Boot', () => {
  const head = mbr([{ type: 0xee, startLba: 1, sectors: 0xffffffff }]);
  head.write('EFI PART', 512, 'latin1');
  head.writeBigUInt64LE(2n, 512 + 72);
  head.writeUInt32LE(128, 512 + 80);
  head.writeUInt32LE(128, 512 + 84);
  const entry = (i: number, guid: string, first: bigint, last: bigint): void => {
    const at = 1024 + i * 128;
    Buffer.from(guid, 'hex').copy(head, at);
    head.writeBigUInt64LE(first, at + 32);
    head.writeBigUInt64LE(last, at + 40);
  };
  entry(0, '28732ac11ff8d211ba4b00a0c93ec93b', 2048n, 4095n);
  entry(2, 'af3dc60f838472478e793d69d8477de4', 4096n, 16383n);
  const table = readPartitionTable(head, '/dev/nvme0n1', 16 * mib);
  assert.equal(table.table, 'gpt');
  assert.deepEqual(
    table.parts.map((p) => [p.index, p.offsetBytes, p.sizeBytes, p.type, p.path]),
    [
      [0, mib, mib, 'Boot', '/dev/nvme0n1p1'],
      [1, 2 * mib, 6 * mib, 'Normal', '/dev/nvme0n1p2'],
    ],
  );
});

it('treats a disk without a partition table as one part, and names partitions as the kernel does', () => {
  assert.deepEqual(readPartitionTable(Buffer.alloc(partitionTableBytes), '/data/disk.img', 4 * mib), {
    table: 'none',
    parts: [{ index: 0, offsetBytes: 0, sizeBytes: 4 * mib, type: 'Normal', path: '/data/disk.img1' }],
  });
  assert.equal(readPartitionTable(Buffer.alloc(100), 'x', 100).table, 'none', 'a disk smaller than a sector has no table');
  assert.equal(partitionPath('/dev/vdb', 3), '/dev/vdb3');
  assert.equal(partitionPath('/dev/loop0', 1), '/dev/loop0p1');
});

it('names the OS from os-release', () => {
  assert.equal(osName('NAME="CentOS Linux"\nVERSION="7 (Core)"\nPRETTY_NAME="CentOS Linux 7 (Core)"\n'), 'CentOS Linux 7 (Core)');
  assert.equal(osName('NAME=Debian\nVERSION="12 (bookworm)"'), 'Debian 12 (bookworm)');
  assert.equal(osName(''), '');
});
