/**
 * Tar headers, written by hand: POSIX ustar, with a PAX extended header in front of any entry whose
 * path, link target, size or ids do not fit ustar's fields. Enough for OCI image layers (regular
 * files, directories, symlinks, hard links), which container tools unpack as they do `docker save`'s.
 */

export const tarBlockBytes = 512;

export type TarEntryType = 'file' | 'dir' | 'symlink' | 'hardlink';

export interface TarEntry {
  /** Path inside the archive, relative, `/`-separated; directories may end in `/`. */
  readonly path: string;
  readonly type: TarEntryType;
  /** Permission bits and setuid/setgid/sticky (the low 12 bits of st_mode). */
  readonly mode: number;
  readonly uid: number;
  readonly gid: number;
  /** Modification time in ms since the epoch; the archive keeps whole seconds (and the fraction in PAX). */
  readonly mtimeMs: number;
  /** Bytes of content that follow the header: regular files only. */
  readonly sizeBytes: number;
  /** Symlink target, or for a hard link the archive path of the entry it links to. */
  readonly linkTarget?: string;
}

const typeFlags: Record<TarEntryType, string> = { file: '0', hardlink: '1', symlink: '2', dir: '5' };
/** Largest value an octal field of `width` bytes holds (width - 1 digits and a NUL). */
const octalMax = (width: number): number => 8 ** (width - 1) - 1;

function writeString(block: Buffer, offset: number, width: number, value: string): void {
  Buffer.from(value, 'utf8').subarray(0, width).copy(block, offset);
}

function writeOctal(block: Buffer, offset: number, width: number, value: number): void {
  writeString(block, offset, width, `${Math.min(value, octalMax(width)).toString(8).padStart(width - 1, '0')}\0`);
}

/** One PAX record, `"<len> <key>=<value>\n"`, whose length counts its own digits. */
function paxRecord(key: string, value: string): string {
  const body = ` ${key}=${value}\n`;
  const bodyBytes = Buffer.byteLength(body, 'utf8');
  let length = bodyBytes + String(bodyBytes).length;
  // Adding the digits may add a digit (98 + 2 = 100): settle on the length that counts itself.
  while (length !== bodyBytes + String(length).length) length = bodyBytes + String(length).length;
  return `${length}${body}`;
}

function fitsUstar(value: string, width: number): boolean {
  // Non-ASCII names go to PAX too, so every reader sees them as UTF-8.
  return Buffer.byteLength(value, 'utf8') <= width && /^[\x20-\x7e]*$/.test(value);
}

function ustarBlock(entry: TarEntry, typeFlag: string, sizeBytes: number): Buffer {
  const block = Buffer.alloc(tarBlockBytes);
  writeString(block, 0, 100, entry.path);
  writeOctal(block, 100, 8, entry.mode & 0o7777);
  writeOctal(block, 108, 8, entry.uid);
  writeOctal(block, 116, 8, entry.gid);
  writeOctal(block, 124, 12, sizeBytes);
  writeOctal(block, 136, 12, Math.max(0, Math.floor(entry.mtimeMs / 1000)));
  block.write(typeFlag, 156, 'latin1');
  writeString(block, 157, 100, entry.linkTarget ?? '');
  block.write('ustar\u000000', 257, 'latin1');
  writeOctal(block, 329, 8, 0);
  writeOctal(block, 337, 8, 0);
  // The checksum is the byte sum of the header with its own field read as spaces.
  block.fill(0x20, 148, 156);
  let sum = 0;
  for (const byte of block) sum += byte;
  writeString(block, 148, 8, `${sum.toString(8).padStart(6, '0')}\0 `);
  return block;
}

/** Zeros that fill `sizeBytes` of content up to the next 512-byte block. */
export function tarPadding(sizeBytes: number): Buffer {
  const rest = sizeBytes % tarBlockBytes;
  return Buffer.alloc(rest === 0 ? 0 : tarBlockBytes - rest);
}

/** The header blocks of one entry: a PAX header first when ustar cannot hold it, then the ustar header. */
export function tarHeader(entry: TarEntry): Buffer {
  const path = entry.type === 'dir' && !entry.path.endsWith('/') ? `${entry.path}/` : entry.path;
  const sizeBytes = entry.type === 'file' ? entry.sizeBytes : 0;
  const records: string[] = [];
  if (!fitsUstar(path, 100)) records.push(paxRecord('path', path));
  if (entry.linkTarget !== undefined && !fitsUstar(entry.linkTarget, 100)) records.push(paxRecord('linkpath', entry.linkTarget));
  if (sizeBytes > octalMax(12)) records.push(paxRecord('size', String(sizeBytes)));
  if (entry.uid > octalMax(8)) records.push(paxRecord('uid', String(entry.uid)));
  if (entry.gid > octalMax(8)) records.push(paxRecord('gid', String(entry.gid)));
  if (entry.mtimeMs % 1000 !== 0 && entry.mtimeMs > 0) records.push(paxRecord('mtime', (entry.mtimeMs / 1000).toFixed(3)));
  const main = ustarBlock({ ...entry, path }, typeFlags[entry.type], sizeBytes);
  if (records.length === 0) return main;
  const pax = Buffer.from(records.join(''), 'utf8');
  const paxName = `PaxHeaders/${path.replace(/\/$/, '').split('/').pop() ?? 'entry'}`.slice(0, 99);
  const paxHeader = ustarBlock({ path: paxName, type: 'file', mode: 0o644, uid: 0, gid: 0, mtimeMs: entry.mtimeMs, sizeBytes: pax.length }, 'x', pax.length);
  return Buffer.concat([paxHeader, pax, tarPadding(pax.length), main]);
}

/** Two zero blocks end an archive. */
export function tarEnd(): Buffer {
  return Buffer.alloc(2 * tarBlockBytes);
}
