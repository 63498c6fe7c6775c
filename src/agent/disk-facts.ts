import { open } from 'node:fs/promises';
import type { DiskFacts } from '../core/agent-protocol.ts';
import { sourceSizeBytes } from '../dataplane/block-reader.ts';
import { partitionTableBytes, readPartitionTable } from './partition-table.ts';

/** Size and partitions of each disk, in --disk order: index 0 is the system disk. */
export async function readDiskFacts(paths: readonly string[]): Promise<DiskFacts[]> {
  const out: DiskFacts[] = [];
  for (const [index, path] of paths.entries()) {
    const sizeBytes = await sourceSizeBytes(path);
    const handle = await open(path, 'r');
    try {
      const head = Buffer.alloc(Math.min(partitionTableBytes, sizeBytes));
      await handle.read(head, 0, head.length, 0);
      const { table, parts } = readPartitionTable(head, path, sizeBytes);
      out.push({ index, path, sizeBytes, partitionTable: table, parts });
    } finally {
      await handle.close();
    }
  }
  return out;
}
