/**
 * OCI image pieces (image-spec v1): a gzip'd tar layer with its two digests, the image config
 * and the manifest. Built from a tar stream on disk, so a layer of any size streams through.
 */
import { createHash } from 'node:crypto';
import { createReadStream, createWriteStream } from 'node:fs';
import { Transform } from 'node:stream';
import { pipeline } from 'node:stream/promises';
import { createGzip } from 'node:zlib';

export const ociMediaTypes = {
  manifest: 'application/vnd.oci.image.manifest.v1+json',
  config: 'application/vnd.oci.image.config.v1+json',
  layerGzip: 'application/vnd.oci.image.layer.v1.tar+gzip',
} as const;

/** A content-addressed blob: `sha256:<hex>` of its bytes. */
export interface OciDescriptor {
  readonly mediaType: string;
  readonly digest: string;
  readonly size: number;
}

export interface OciLayer extends OciDescriptor {
  /** Digest of the uncompressed tar: the config's rootfs diff_id. */
  readonly diffId: string;
  /** The compressed layer file. */
  readonly path: string;
}

function counting(hash: ReturnType<typeof createHash>, onBytes: (n: number) => void): Transform {
  return new Transform({
    transform(chunk: Buffer, _encoding, done) {
      hash.update(chunk);
      onBytes(chunk.length);
      done(null, chunk);
    },
  });
}

/** Gzip the tar at `tarPath` into `layerPath`, hashing both sides in the same pass. */
export async function buildGzipLayer(tarPath: string, layerPath: string, signal?: AbortSignal): Promise<OciLayer> {
  const tarHash = createHash('sha256');
  const gzHash = createHash('sha256');
  let size = 0;
  await pipeline(
    createReadStream(tarPath, { highWaterMark: 1024 * 1024 }),
    counting(tarHash, () => undefined),
    createGzip({ level: 6 }),
    counting(gzHash, (n) => (size += n)),
    createWriteStream(layerPath),
    ...(signal === undefined ? [] : [{ signal }]),
  );
  return { mediaType: ociMediaTypes.layerGzip, digest: `sha256:${gzHash.digest('hex')}`, size, diffId: `sha256:${tarHash.digest('hex')}`, path: layerPath };
}

/** GOARCH-style names the image config wants, from `uname -m` style ones. */
const architectures: Record<string, string> = { x86_64: 'amd64', amd64: 'amd64', aarch64: 'arm64', arm64: 'arm64', i386: '386', i686: '386', armv7l: 'arm', ppc64le: 'ppc64le', s390x: 's390x', riscv64: 'riscv64' };

export function ociArchitecture(machine: string): string {
  return architectures[machine] ?? (machine === '' ? 'amd64' : machine);
}

export interface ImageConfigInput {
  /** `uname -m` style, e.g. x86_64; mapped to amd64 and the like. */
  readonly architecture: string;
  readonly os: string;
  readonly createdMs: number;
  readonly layers: readonly OciLayer[];
  /** One line for the history: what made the image. */
  readonly createdBy: string;
}

/** The image config JSON: platform, rootfs diff_ids, a default PATH and shell, the history. */
export function imageConfig(input: ImageConfigInput): Buffer {
  const created = new Date(input.createdMs).toISOString();
  return Buffer.from(
    JSON.stringify({
      created,
      architecture: ociArchitecture(input.architecture),
      os: input.os,
      config: { Env: ['PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin'], Cmd: ['/bin/sh'] },
      rootfs: { type: 'layers', diff_ids: input.layers.map((l) => l.diffId) },
      history: input.layers.map(() => ({ created, created_by: input.createdBy })),
    }),
    'utf8',
  );
}

export function sha256Digest(data: Buffer): string {
  return `sha256:${createHash('sha256').update(data).digest('hex')}`;
}

/** The image manifest JSON over the config and the layers. */
export function imageManifest(config: Buffer, layers: readonly OciDescriptor[], annotations: Readonly<Record<string, string>> = {}): Buffer {
  return Buffer.from(
    JSON.stringify({
      schemaVersion: 2,
      mediaType: ociMediaTypes.manifest,
      config: { mediaType: ociMediaTypes.config, digest: sha256Digest(config), size: config.length },
      layers: layers.map((l) => ({ mediaType: l.mediaType, digest: l.digest, size: l.size })),
      ...(Object.keys(annotations).length > 0 ? { annotations } : {}),
    }),
    'utf8',
  );
}
