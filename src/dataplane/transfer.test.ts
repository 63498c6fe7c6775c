/**
 * Sender to receiver over real TCP loopback sockets: full runs, incremental runs, a connection
 * killed mid-run and resumed, and a bandwidth limit measured in real time.
 */
import assert from 'node:assert/strict';
import { createHash, randomFillSync } from 'node:crypto';
import { createReadStream, copyFileSync, mkdtempSync, rmSync, statSync, writeFileSync } from 'node:fs';
import { type Socket } from 'node:net';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, before, test } from 'node:test';
import { DataPlaneError } from './dataplane-error.ts';
import { loopbackPair } from './loopback-pair.ts';
import { buildManifest, diffManifest, Manifest } from './manifest.ts';
import { bucketForMbps, mbpsToBytesPerSec } from './rate-limit.ts';
import { type Checkpoint, Receiver, type ReceiveStats } from './receiver.ts';
import { type SendStats, Sender } from './sender.ts';
import { mutateTestDisk, writeTestDisk } from './test-disk.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'ferry-transfer-'));
const disk = join(dir, 'disk.raw');
const diskSizeBytes = 256 * MiB;
after(() => rmSync(dir, { recursive: true, force: true }));
before(async () => {
  const segments = await writeTestDisk(disk, { sizeBytes: diskSizeBytes, seed: 11 });
  const kinds = new Set(segments.map((s) => s.kind));
  assert.ok(['random', 'text', 'hole', 'zeros'].every((k) => kinds.has(k as never)), 'the test disk mixes random, text, written zeros and holes');
});

async function sha256Of(path: string): Promise<string> {
  const hash = createHash('sha256');
  for await (const part of createReadStream(path, { highWaterMark: 4 * MiB })) hash.update(part as Buffer);
  return hash.digest('hex');
}

interface Run {
  readonly sent: PromiseSettledResult<SendStats>;
  readonly received: PromiseSettledResult<ReceiveStats>;
  /** Bytes that reached the receiver, as it read them off the socket. */
  readonly wireBytes: number;
}

/**
 * One connection: the sender dials, the receiver serves the accepted socket (re-opened inside
 * the receiver, see frame-reader.ts; so `onClient` gets the sender's end, which is the one to cut).
 */
async function connectAndRun(sender: Sender, receiver: Receiver, onClient?: (client: Socket) => void, signal?: AbortSignal): Promise<Run> {
  const { client, server } = await loopbackPair();
  onClient?.(client);
  const [sent, received] = await Promise.allSettled([sender.run(client, signal), receiver.run(server)]);
  return { sent, received, wireBytes: receiver.bytesRead };
}

function ok<T>(result: PromiseSettledResult<T>): T {
  if (result.status === 'rejected') throw result.reason;
  return result.value;
}

function failure(result: PromiseSettledResult<unknown>): unknown {
  if (result.status === 'fulfilled') assert.fail('the run was expected to fail');
  return result.reason;
}

function dataPlaneFailure(result: PromiseSettledResult<unknown>): DataPlaneError {
  const reason = failure(result);
  assert.ok(reason instanceof DataPlaneError, `not a DataPlaneError: ${String(reason)}`);
  return reason;
}

test('a full run copies a sparse disk exactly, keeps the image sparse, and both proofs agree', async () => {
  const image = join(dir, 'full.raw');
  let lastCheckpoint: Buffer | undefined;
  const receiver = new Receiver({ imagePath: image, onCheckpoint: ({ manifest }) => void (lastCheckpoint = manifest.encode()) });
  const run = await connectAndRun(new Sender({ sourcePath: disk, compressLevel: 1 }), receiver);
  const sent = ok(run.sent);
  const received = ok(run.received);

  assert.equal(await sha256Of(image), await sha256Of(disk));
  assert.equal(received.proof, sent.proof);
  const source = await buildManifest(disk);
  const { data, zero } = source.counts();
  assert.ok(zero > 0, 'the disk has zero chunks to skip');
  assert.equal(sent.dataChunksSent, data);
  assert.equal(sent.zeroChunksSent, 0, 'a fresh image is already zero');
  assert.equal(statSync(image).size, diskSizeBytes);
  // Zero chunks and zero runs inside chunks stay holes: the image takes no more room than the source.
  assert.ok(statSync(image).blocks <= statSync(disk).blocks + 512, `image ${statSync(image).blocks} blocks, source ${statSync(disk).blocks}`);
  assert.ok(received.payloadBytesReceived < sent.rawBytesSent, 'compress_level 1 shrank the text chunks');
  assert.ok(lastCheckpoint !== undefined);
  assert.equal(Manifest.decode(lastCheckpoint).encode().equals(source.encode()), true, 'the last checkpoint is the source manifest');
});

test('an incremental run after a 1% change sends only the changed chunks', async () => {
  const chunkSizeBytes = MiB;
  const image = join(dir, 'incremental.raw');
  const changed = join(dir, 'changed.raw');
  copyFileSync(disk, changed);
  const first = await connectAndRun(new Sender({ sourcePath: changed, chunkSizeBytes }), new Receiver({ imagePath: image }));
  const base = ok(first.received).manifest;

  const offsets = await mutateTestDisk(changed, { fraction: 0.01, blockBytes: 64 * 1024 });
  const expected = diffManifest(base, await buildManifest(changed, { chunkSizeBytes }));
  assert.deepEqual(expected, [...new Set(offsets.map((o) => Math.floor(o / chunkSizeBytes)))].sort((a, b) => a - b));

  const second = await connectAndRun(new Sender({ sourcePath: changed, chunkSizeBytes }), new Receiver({ imagePath: image, state: base }));
  const sent = ok(second.sent);
  ok(second.received);
  assert.deepEqual([...sent.sentIndexes].sort((a, b) => a - b), expected);
  const changedBytes = expected.length * chunkSizeBytes;
  assert.ok(second.wireBytes <= 1.1 * changedBytes, `${second.wireBytes} bytes on the wire for ${changedBytes} bytes of changed chunks`);
  assert.equal(await sha256Of(image), await sha256Of(changed));
});

for (const restart of [false, true]) {
  test(`a connection killed mid-run resumes without resending confirmed chunks (${restart ? 'both sides restarted' : 'same objects'})`, async () => {
    const windowChunks = 4;
    const image = join(dir, `resume-${restart}.raw`);
    const confirmed = new Set<number>();
    let saved: Buffer | undefined;
    let checkpoints = 0;
    let client: Socket | undefined;
    const onCheckpoint = (checkpoint: Checkpoint): void => {
      saved = checkpoint.manifest.encode();
      for (const index of checkpoint.confirmed) confirmed.add(index);
      if (++checkpoints === 4) client?.destroy();
    };
    let sender = new Sender({ sourcePath: disk, windowChunks });
    let receiver = new Receiver({ imagePath: image, onCheckpoint });
    const killed = await connectAndRun(sender, receiver, (c) => (client = c));
    assert.equal(dataPlaneFailure(killed.sent).code, 'ConnectionLost');
    assert.equal(dataPlaneFailure(killed.sent).retryable, true);
    failure(killed.received);
    const confirmedBeforeResume = new Set(confirmed);
    assert.ok(confirmedBeforeResume.size >= 8, `${confirmedBeforeResume.size} chunks confirmed before the kill`);

    if (restart) {
      assert.ok(saved !== undefined);
      sender = new Sender({ sourcePath: disk, windowChunks });
      receiver = new Receiver({ imagePath: image, state: Manifest.decode(saved), onCheckpoint });
    }
    const resumed = await connectAndRun(sender, receiver);
    const sent = ok(resumed.sent);
    ok(resumed.received);
    assert.equal(await sha256Of(image), await sha256Of(disk));
    assert.deepEqual(sent.sentIndexes.filter((i) => confirmedBeforeResume.has(i)), [], 'confirmed chunks are never sent again');

    // Everything sent over both connections: the chunks needed once, plus at most a window of resends.
    const needed = (await buildManifest(disk)).counts().data;
    const chunkBytes = 4 * MiB + 64;
    assert.ok(
      killed.wireBytes + resumed.wireBytes <= (needed + windowChunks) * chunkBytes + 64 * 1024,
      `${killed.wireBytes} + ${resumed.wireBytes} bytes for ${needed} chunks`,
    );
  });
}

test('aborting the sender stops the run with the abort reason and the receiver sees a lost connection', async () => {
  const controller = new AbortController();
  const receiver = new Receiver({ imagePath: join(dir, 'aborted.raw'), onCheckpoint: () => controller.abort(new Error('job cancelled')) });
  const run = await connectAndRun(new Sender({ sourcePath: disk }), receiver, undefined, controller.signal);
  assert.match(String(failure(run.sent)), /job cancelled/);
  assert.equal(dataPlaneFailure(run.received).code, 'ConnectionLost');
});

test('bandwidth_limit holds within 5% over every 10 s window (real time, about 12 s)', async () => {
  const limitMbps = 40;
  const bytesPerSec = mbpsToBytesPerSec(limitMbps);
  const source = join(dir, 'limited.raw');
  const data = Buffer.allocUnsafe(56 * MiB);
  randomFillSync(data);
  writeFileSync(source, data);

  const samples: { atMs: number; bytes: number }[] = [];
  let timer: NodeJS.Timeout | undefined;
  const receiver = new Receiver({ imagePath: join(dir, 'limited-image.raw') });
  const run = await connectAndRun(new Sender({ sourcePath: source, bucket: bucketForMbps(limitMbps) }), receiver, () => {
    timer = setInterval(() => samples.push({ atMs: performance.now(), bytes: receiver.bytesRead }), 50);
  });
  clearInterval(timer);
  ok(run.sent);
  ok(run.received);

  // Windows lie between the first byte and the last one.
  const total = samples.at(-1)?.bytes ?? 0;
  const start = samples.find((s) => s.bytes > 0);
  const end = samples.find((s) => s.bytes === total);
  assert.ok(start !== undefined && end !== undefined);
  assert.ok(end.atMs - start.atMs > 10_500, `the transfer took ${(end.atMs - start.atMs).toFixed(0)} ms, too short to measure a 10 s window`);
  const bytesAt = (ms: number): number => samples.filter((s) => s.atMs <= ms).at(-1)?.bytes ?? 0;
  for (let from = start.atMs; from + 10_000 <= end.atMs; from += 100) {
    const ratio = (bytesAt(from + 10_000) - bytesAt(from)) / (bytesPerSec * 10);
    assert.ok(ratio >= 0.95 && ratio <= 1.05, `the 10 s window from ${(from - start.atMs).toFixed(0)} ms carried ${ratio.toFixed(3)}x the limit`);
  }
});
