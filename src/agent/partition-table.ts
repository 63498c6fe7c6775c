import type { PartitionFacts } from '../core/agent-protocol.ts';

/** Bytes of a disk's start that hold its partition table: MBR, the GPT header and 128 entries of 128 bytes. */
export const partitionTableBytes = 34 * 512;

const sectorBytes = 512;
/** The EFI system partition's type GUID in its on-disk (mixed-endian) byte order. */
const efiSystemGuid = Buffer.from('28732ac11ff8d211ba4b00a0c93ec93b', 'hex');
const mbrTypes = { empty: 0x00, gptProtective: 0xee, extendedChs: 0x05, extendedLba: 0x0f, linuxExtended: 0x85 } as const;

export interface PartitionTable {
  readonly table: 'mbr' | 'gpt' | 'none';
  readonly parts: readonly PartitionFacts[];
}

/** `/dev/sda` → `/dev/sda1`, `/dev/nvme0n1` → `/dev/nvme0n1p1`, as the kernel names partitions. */
export function partitionPath(diskPath: string, number: number): string {
  return /\d$/.test(diskPath) ? `${diskPath}p${number}` : `${diskPath}${number}`;
}

/**
 * The partitions in the first bytes of a disk (512-byte sectors): a GPT (behind its protective MBR),
 * else an MBR's primary entries (extended containers skipped), else the whole disk as one part.
 */
export function readPartitionTable(head: Buffer, diskPath: string, diskSizeBytes: number): PartitionTable {
  const whole: PartitionTable = { table: 'none', parts: [{ index: 0, offsetBytes: 0, sizeBytes: diskSizeBytes, type: 'Normal', path: partitionPath(diskPath, 1) }] };
  if (head.length < sectorBytes || head.readUInt16LE(510) !== 0xaa55) return whole;
  const entries = [0, 1, 2, 3].map((i) => head.subarray(446 + i * 16, 462 + i * 16));
  if (entries.some((e) => e[4] === mbrTypes.gptProtective)) return readGpt(head, diskPath, diskSizeBytes) ?? whole;
  const parts: PartitionFacts[] = [];
  for (const entry of entries) {
    const type = entry[4] ?? 0;
    if (type === mbrTypes.empty || type === mbrTypes.extendedChs || type === mbrTypes.extendedLba || type === mbrTypes.linuxExtended) continue;
    const offsetBytes = entry.readUInt32LE(8) * sectorBytes;
    const sizeBytes = entry.readUInt32LE(12) * sectorBytes;
    if (sizeBytes === 0 || offsetBytes + sizeBytes > diskSizeBytes) continue;
    parts.push({ index: parts.length, offsetBytes, sizeBytes, type: entry[0] === 0x80 ? 'Boot' : 'Normal', path: partitionPath(diskPath, parts.length + 1) });
  }
  return parts.length === 0 ? whole : { table: 'mbr', parts };
}

function readGpt(head: Buffer, diskPath: string, diskSizeBytes: number): PartitionTable | undefined {
  const header = head.subarray(sectorBytes, 2 * sectorBytes);
  if (header.length < 92 || header.toString('latin1', 0, 8) !== 'EFI PART') return undefined;
  const entriesLba = Number(header.readBigUInt64LE(72));
  const count = header.readUInt32LE(80);
  const entryBytes = header.readUInt32LE(84);
  if (entryBytes < 128 || count > 1024) return undefined;
  const parts: PartitionFacts[] = [];
  for (let i = 0; i < count; i += 1) {
    const at = entriesLba * sectorBytes + i * entryBytes;
    if (at + entryBytes > head.length) break;
    const entry = head.subarray(at, at + entryBytes);
    if (entry.subarray(0, 16).every((b) => b === 0)) continue;
    const first = Number(entry.readBigUInt64LE(32));
    const last = Number(entry.readBigUInt64LE(40));
    const offsetBytes = first * sectorBytes;
    const sizeBytes = (last - first + 1) * sectorBytes;
    if (last < first || offsetBytes + sizeBytes > diskSizeBytes) continue;
    parts.push({ index: parts.length, offsetBytes, sizeBytes, type: entry.subarray(0, 16).equals(efiSystemGuid) ? 'Boot' : 'Normal', path: partitionPath(diskPath, parts.length + 1) });
  }
  return { table: 'gpt', parts };
}
