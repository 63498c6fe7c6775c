/**
 * The source's file tree as a tar stream, for ContainerImage runs: regular files, directories,
 * symlinks and hard links under --root with their modes, owners and mtimes. Pseudo filesystems
 * mounted under the root (/proc, /sys, /dev, /run...) are kept as empty directories, since their
 * contents are the running kernel's, not the server's; sockets and device nodes are left out.
 */
import { type Stats, readFileSync } from 'node:fs';
import { lstat, open, readdir, readlink } from 'node:fs/promises';
import { join, relative, resolve, sep } from 'node:path';
import { type TarEntry, tarEnd, tarHeader, tarPadding } from '../dataplane/tar-writer.ts';

/** Filesystem types whose contents a container image must not carry. */
const pseudoFsTypes = new Set([
  'proc', 'sysfs', 'devtmpfs', 'devpts', 'tmpfs', 'cgroup', 'cgroup2', 'securityfs', 'debugfs', 'tracefs', 'mqueue',
  'hugetlbfs', 'pstore', 'bpf', 'autofs', 'fusectl', 'configfs', 'binfmt_misc', 'efivarfs', 'rpc_pipefs', 'nsfs',
]);

/** Mount points of pseudo filesystems, from /proc/self/mountinfo (none when it cannot be read). */
export function pseudoMountPoints(mountInfo = '/proc/self/mountinfo'): string[] {
  let text: string;
  try {
    text = readFileSync(mountInfo, 'utf8');
  } catch {
    return [];
  }
  const points: string[] = [];
  for (const line of text.split('\n')) {
    // "<id> <parent> <maj:min> <root> <mount point> <options> [optional...] - <fstype> <source> <super options>"
    const [left, right] = line.split(' - ');
    const mountPoint = left?.split(' ')[4];
    const fsType = right?.split(' ')[0];
    if (mountPoint === undefined || fsType === undefined || !pseudoFsTypes.has(fsType)) continue;
    points.push(mountPoint.replace(/\\([0-7]{3})/g, (_, octal: string) => String.fromCharCode(parseInt(octal, 8))));
  }
  return points;
}

export interface FileTreeOptions {
  /** Absolute paths whose contents stay out of the tree (the directory itself is kept). */
  readonly skipContentsOf?: readonly string[];
  /** Absolute paths left out entirely (the agent's own state: its key must not end up in an image). */
  readonly exclude?: readonly string[];
  readonly signal?: AbortSignal;
}

export interface FileTreeTotals {
  readonly entries: number;
  /** Bytes of regular file content (hard links counted once). */
  readonly contentBytes: number;
}

interface Visit {
  readonly path: string;
  readonly archivePath: string;
  readonly stats: Stats;
}

/**
 * A live system deletes files while they are walked (logs rotate, temp files go): such an entry is
 * left out, as if the walk had come a moment later. Undefined when it is gone and `mayVanish`.
 */
async function orGone<T>(work: Promise<T>, mayVanish = true): Promise<T | undefined> {
  try {
    return await work;
  } catch (err) {
    if (mayVanish && (err as NodeJS.ErrnoException).code === 'ENOENT') return undefined;
    throw err;
  }
}

/** Depth-first, names sorted bytewise, so one tree always gives one archive. */
async function* walk(root: string, options: FileTreeOptions): AsyncGenerator<Visit> {
  const skipContents = new Set((options.skipContentsOf ?? []).map((p) => resolve(p)));
  const exclude = new Set((options.exclude ?? []).map((p) => resolve(p)));
  const stack: string[] = [root];
  while (stack.length > 0) {
    options.signal?.throwIfAborted();
    const path = stack.pop() ?? root;
    const stats = await orGone(lstat(path), path !== root);
    if (stats === undefined) continue;
    const rel = relative(root, path).split(sep).join('/');
    if (rel !== '') yield { path, archivePath: stats.isDirectory() ? `${rel}/` : rel, stats };
    if (!stats.isDirectory() || (path !== root && skipContents.has(path))) continue;
    const names = ((await orGone(readdir(path), path !== root)) ?? []).sort((a, b) => Buffer.compare(Buffer.from(a), Buffer.from(b)));
    for (const name of names.reverse()) {
      const child = join(path, name);
      if (!exclude.has(child)) stack.push(child);
    }
  }
}

/** Entries and content bytes of the tree, for progress: a cheap pass of lstat calls. */
export async function fileTreeTotals(root: string, options: FileTreeOptions = {}): Promise<FileTreeTotals> {
  let entries = 0;
  let contentBytes = 0;
  const seen = new Set<string>();
  for await (const { stats } of walk(resolve(root), options)) {
    entries += 1;
    if (!stats.isFile()) continue;
    const inode = `${stats.dev}:${stats.ino}`;
    if (stats.nlink > 1 && seen.has(inode)) continue;
    seen.add(inode);
    contentBytes += stats.size;
  }
  return { entries, contentBytes };
}

const readPieceBytes = 1024 * 1024;

/**
 * The tree under `root` as an uncompressed tar stream, in pieces of at most about 1 MiB. A file
 * that shrinks while read is padded with zeros and one that grows is cut at its size when opened,
 * so the archive always stays well formed.
 */
export async function* fileTreeTar(root: string, options: FileTreeOptions = {}): AsyncGenerator<Buffer> {
  const base = resolve(root);
  const linked = new Map<string, string>();
  for await (const { path, archivePath, stats } of walk(base, options)) {
    const common = { path: archivePath, mode: stats.mode & 0o7777, uid: stats.uid, gid: stats.gid, mtimeMs: Math.floor(stats.mtimeMs), sizeBytes: 0 };
    if (stats.isDirectory()) yield tarHeader({ ...common, type: 'dir' });
    else if (stats.isSymbolicLink()) {
      const linkTarget = await orGone(readlink(path));
      if (linkTarget !== undefined) yield tarHeader({ ...common, type: 'symlink', linkTarget });
    } else if (stats.isFile()) {
      const inode = `${stats.dev}:${stats.ino}`;
      const first = stats.nlink > 1 ? linked.get(inode) : undefined;
      if (first !== undefined) {
        yield tarHeader({ ...common, type: 'hardlink', linkTarget: first });
        continue;
      }
      const written = yield* fileEntry(path, common, options.signal);
      if (written && stats.nlink > 1) linked.set(inode, archivePath);
    }
  }
  yield tarEnd();
}

/** One regular file's header and content; false, writing nothing, when it vanished before it was opened. */
async function* fileEntry(path: string, common: Omit<TarEntry, 'type'>, signal: AbortSignal | undefined): AsyncGenerator<Buffer, boolean> {
  const handle = await orGone(open(path, 'r'));
  if (handle === undefined) return false;
  try {
    const sizeBytes = (await handle.stat()).size;
    yield tarHeader({ ...common, type: 'file', sizeBytes });
    let done = 0;
    while (done < sizeBytes) {
      signal?.throwIfAborted();
      const piece = Buffer.alloc(Math.min(readPieceBytes, sizeBytes - done));
      // Past a shrunken file's end the rest of `piece` stays zero.
      await handle.read(piece, 0, piece.length, done);
      done += piece.length;
      yield piece;
    }
    yield tarPadding(sizeBytes);
    return true;
  } finally {
    await handle.close();
  }
}
