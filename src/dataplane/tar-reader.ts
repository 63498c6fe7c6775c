/**
 * A strict reading of a tar stream's structure, before it becomes an image layer: every header's
 * checksum, every PAX record's self-counted length, content sizes, and the end-of-archive blocks.
 * Contents are skipped, not checked; the point is that any container tool will unpack the layer.
 */
import { open } from 'node:fs/promises';
import { tarBlockBytes } from './tar-writer.ts';

export interface TarSummary {
  /** Entries, PAX headers not counted. */
  readonly entries: number;
  /** Bytes of regular file content. */
  readonly contentBytes: number;
}

/** The archive is not well formed; `offsetBytes` is where the bad header starts. */
export class TarFormatError extends Error {
  constructor(
    readonly offsetBytes: number,
    reason: string,
  ) {
    super(`${reason} (header at byte ${offsetBytes})`);
    this.name = 'TarFormatError';
  }
}

function octal(block: Buffer, offset: number, width: number): number {
  const text = block.toString('latin1', offset, offset + width).replace(/[\0 ]+$/, '').replace(/^ +/, '');
  if (!/^[0-7]*$/.test(text)) return Number.NaN;
  return text === '' ? 0 : parseInt(text, 8);
}

function checksumOk(block: Buffer): boolean {
  let sum = 0;
  for (let i = 0; i < tarBlockBytes; i += 1) sum += i >= 148 && i < 156 ? 0x20 : (block[i] ?? 0);
  return octal(block, 148, 8) === sum;
}

/** PAX records of an extended header; throws on a record whose length does not count itself. */
function paxRecords(data: Buffer, at: number): Map<string, string> {
  const records = new Map<string, string>();
  let pos = 0;
  while (pos < data.length) {
    const space = data.indexOf(0x20, pos);
    const length = Number(data.toString('latin1', pos, space));
    if (space < 0 || !Number.isInteger(length) || length <= 0 || pos + length > data.length || data[pos + length - 1] !== 0x0a) {
      throw new TarFormatError(at, `a PAX record at ${pos} of the extended header does not count its own length`);
    }
    const record = data.toString('utf8', space + 1, pos + length - 1);
    const eq = record.indexOf('=');
    if (eq < 0) throw new TarFormatError(at, `a PAX record at ${pos} has no key=value`);
    records.set(record.slice(0, eq), record.slice(eq + 1));
    pos += length;
  }
  return records;
}

/** Read the headers of the tar at `path`; throws TarFormatError at the first thing a reader would refuse. */
export async function scanTar(path: string): Promise<TarSummary> {
  const file = await open(path, 'r');
  try {
    const { size } = await file.stat();
    const block = Buffer.alloc(tarBlockBytes);
    let at = 0;
    let entries = 0;
    let contentBytes = 0;
    let sizeOverride: number | undefined;
    for (;;) {
      if (at + tarBlockBytes > size) throw new TarFormatError(at, 'the archive ends without its two zero blocks');
      await file.read(block, 0, tarBlockBytes, at);
      if (block.every((b) => b === 0)) {
        await file.read(block, 0, tarBlockBytes, at + tarBlockBytes);
        if (at + 2 * tarBlockBytes > size || !block.every((b) => b === 0)) throw new TarFormatError(at, 'a zero block not followed by another');
        return { entries, contentBytes };
      }
      if (!checksumOk(block)) throw new TarFormatError(at, 'the header checksum is wrong');
      const type = String.fromCharCode(block[156] ?? 0);
      const headerSize = octal(block, 124, 12);
      if (Number.isNaN(headerSize)) throw new TarFormatError(at, 'the size field is not octal');
      const dataBytes = type === 'x' || type === 'g' ? headerSize : (sizeOverride ?? headerSize);
      const dataAt = at + tarBlockBytes;
      if (dataAt + dataBytes > size) throw new TarFormatError(at, `the entry claims ${dataBytes} bytes past the end of the archive`);
      if (type === 'x') {
        const data = Buffer.alloc(dataBytes);
        await file.read(data, 0, dataBytes, dataAt);
        const pax = paxRecords(data, at);
        const paxSize = pax.get('size');
        sizeOverride = paxSize === undefined ? undefined : Number(paxSize);
        if (sizeOverride !== undefined && !Number.isSafeInteger(sizeOverride)) throw new TarFormatError(at, 'the PAX size is not a whole number');
      } else if (type !== 'g') {
        entries += 1;
        if (type === '0' || type === '\0' || type === '7') contentBytes += dataBytes;
        sizeOverride = undefined;
      }
      at = dataAt + Math.ceil(dataBytes / tarBlockBytes) * tarBlockBytes;
    }
  } finally {
    await file.close();
  }
}
