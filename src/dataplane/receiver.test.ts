/**
 * The receiver against a hand-driven peer (for what no Sender would send) and against a Sender
 * where the target's state is unusual: another chunk size, another disk size.
 */
import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { mkdtempSync, readFileSync, rmSync, truncateSync, writeFileSync } from 'node:fs';
import { tmpdir } from 'node:os';
import { join } from 'node:path';
import { after, test } from 'node:test';
import { loopbackPair } from './loopback-pair.ts';
import { buildManifest, chunkDigest, hashAlgorithm, type Manifest, proofOf } from './manifest.ts';
import { readFrames } from './frame-reader.ts';
import { decodeError, encodeDataHeader, encodeOffer, encodeProof, type Frame, FrameWriter, protocolVersion } from './protocol.ts';
import { type Checkpoint, Receiver } from './receiver.ts';
import { Sender } from './sender.ts';

const MiB = 1024 * 1024;
const dir = mkdtempSync(join(tmpdir(), 'ferry-receiver-'));
after(() => rmSync(dir, { recursive: true, force: true }));

/** A peer speaking the protocol by hand: offer sent, state read. */
async function handDrivenSender(receiver: Receiver, diskSizeBytes: number) {
  const { client, server } = await loopbackPair();
  const receiving = receiver.run(server);
  receiving.catch(() => undefined);
  const writer = new FrameWriter(client);
  const frames = readFrames(client, () => 16 * MiB);
  await writer.write('offer', encodeOffer({ protocolVersion, diskSizeBytes, chunkSizeBytes: MiB, hashAlgorithm, windowChunks: 4 }));
  const state = await frames.next();
  assert.equal(state.value?.type, 'state');
  const nextFrame = async (): Promise<Frame | undefined> => (await frames.next()).value ?? undefined;
  return { writer, nextFrame, receiving };
}

test('a chunk damaged in one bit after it was hashed is refused, never written, and the sender is told why', async () => {
  const image = join(dir, 'digest.raw');
  const peer = await handDrivenSender(new Receiver({ imagePath: image }), 2 * MiB);
  const data = randomFillSync(Buffer.alloc(MiB));
  const digest = chunkDigest(data);
  data[MiB - 3] = (data[MiB - 3] ?? 0) ^ 0x10;
  await peer.writer.write('data', encodeDataHeader({ index: 0, codec: 'raw', rawLengthBytes: MiB, digest }), data);
  await assert.rejects(peer.receiving, { name: 'DataPlaneError', code: 'ChunkDigestMismatch', retryable: true });
  const reply = await peer.nextFrame();
  assert.equal(reply?.type, 'error');
  assert.equal(reply === undefined ? undefined : decodeError(reply.payload, 'receiver').code, 'ChunkDigestMismatch');
  assert.ok(readFileSync(image).every((b) => b === 0), 'nothing of the damaged chunk reached the image');
});

test('a wrong proof at the end is refused, yet the chunks written are checkpointed for a resume', async () => {
  const checkpoints: Checkpoint[] = [];
  const receiver = new Receiver({ imagePath: join(dir, 'proof.raw'), onCheckpoint: (c) => void checkpoints.push({ manifest: c.manifest.clone(), confirmed: c.confirmed }) });
  const peer = await handDrivenSender(receiver, 2 * MiB);
  const data = Buffer.alloc(MiB, 1);
  await peer.writer.write('data', encodeDataHeader({ index: 1, codec: 'raw', rawLengthBytes: MiB, digest: chunkDigest(data) }), data);
  await peer.writer.write('end', encodeProof('00'.repeat(32)));
  await assert.rejects(peer.receiving, { code: 'ProofMismatch', retryable: false });
  assert.deepEqual(checkpoints.flatMap((c) => c.confirmed), [1]);
  assert.deepEqual(checkpoints.at(-1)?.manifest.digestAt(1), chunkDigest(data));
  assert.equal(receiver.state?.kindAt(1), 'data');
  assert.ok(readFileSync(join(dir, 'proof.raw')).subarray(MiB).equals(data));
});

test('a frame out of order is a protocol error', async () => {
  const peer = await handDrivenSender(new Receiver({ imagePath: join(dir, 'order.raw') }), 2 * MiB);
  await peer.writer.write('offer', encodeOffer({ protocolVersion, diskSizeBytes: 2 * MiB, chunkSizeBytes: MiB, hashAlgorithm, windowChunks: 4 }));
  await assert.rejects(peer.receiving, { code: 'ProtocolError' });
});

test('an offer of another disk size than expected is refused on both sides', async () => {
  const source = join(dir, 'small.raw');
  writeFileSync(source, Buffer.alloc(3 * MiB, 5));
  const { client, server } = await loopbackPair();
  await Promise.all([
    assert.rejects(new Sender({ sourcePath: source }).run(client), { code: 'GeometryMismatch', message: /receiver reported/ }),
    assert.rejects(new Receiver({ imagePath: join(dir, 'expected.raw'), expectedDiskSizeBytes: 4 * MiB }).run(server), { code: 'GeometryMismatch' }),
  ]);
});

async function transfer(sourcePath: string, imagePath: string, state: Manifest | undefined, chunkSizeBytes: number) {
  const { client, server } = await loopbackPair();
  const [sent, received] = await Promise.all([
    new Sender({ sourcePath, chunkSizeBytes }).run(client),
    new Receiver({ imagePath, ...(state === undefined ? {} : { state }) }).run(server),
  ]);
  return { sent, received };
}

/** An 8 MiB source whose first three 1 MiB chunks are random and the rest zero, and where its image goes. */
function threeDataChunks(name: string): { source: string; image: string; content: Buffer } {
  const source = join(dir, `${name}.raw`);
  const content = Buffer.alloc(8 * MiB);
  randomFillSync(content, 0, 3 * MiB);
  writeFileSync(source, content);
  return { source, image: join(dir, `${name}-image.raw`), content };
}

test('a base manifest of another chunk size is unknown content: every chunk is sent, zero ones as zero frames', async () => {
  const { source, image, content } = threeDataChunks('rechunk');
  const first = await transfer(source, image, undefined, MiB);
  writeFileSync(image, Buffer.alloc(8 * MiB, 0xee)); // anything the receiver does not know about is rewritten
  const second = await transfer(source, image, first.received.manifest, 2 * MiB);
  assert.equal(second.sent.sentIndexes.length, 4);
  assert.equal(second.sent.zeroChunksSent, 2);
  assert.ok(readFileSync(image).equals(content));
});

test('a disk that grew since the last run: only the new and the changed last chunk are sent', async () => {
  const source = join(dir, 'grow.raw');
  const image = join(dir, 'grow-image.raw');
  const content = Buffer.alloc(5.5 * MiB);
  randomFillSync(content);
  writeFileSync(source, content);
  const first = await transfer(source, image, undefined, MiB);
  truncateSync(source, 8 * MiB);
  const grown = Buffer.concat([content, Buffer.alloc(2.5 * MiB)]);
  randomFillSync(grown, 7 * MiB, MiB);
  writeFileSync(source, grown);
  const second = await transfer(source, image, first.received.manifest, MiB);
  assert.deepEqual([...second.sent.sentIndexes].sort((a, b) => a - b), [5, 7]);
  assert.ok(readFileSync(image).equals(grown));
  assert.equal(second.received.proof, proofOf(await buildManifest(source, { chunkSizeBytes: MiB })));
});

test('a target whose manifest is of SHA-256 (made before xxh64) holds nothing: it is emptied and every data chunk is sent', async () => {
  const { source, image, content } = threeDataChunks('old-base');
  // The image holds stale bytes everywhere, and its old manifest claims it equals the source.
  writeFileSync(image, Buffer.alloc(8 * MiB, 0xee));
  const old = await buildManifest(source, { chunkSizeBytes: MiB, algorithm: 'sha256' });
  const { sent, received } = await transfer(source, image, old, MiB);
  assert.deepEqual([...sent.sentIndexes].sort((a, b) => a - b), [0, 1, 2]);
  assert.equal(sent.zeroChunksSent, 0, 'an emptied image needs no zero frames');
  assert.equal(received.manifest.algorithm, 'xxh64');
  assert.ok(readFileSync(image).equals(content));
});
