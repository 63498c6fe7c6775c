import assert from 'node:assert/strict';
import { PassThrough, Readable } from 'node:stream';
import { test } from 'node:test';
import { readFrames } from './frame-reader.ts';
import { type Frame, FrameWriter } from './protocol.ts';
import { TokenBucket } from './rate-limit.ts';

async function written(write: (writer: FrameWriter) => Promise<void>, bucket?: TokenBucket): Promise<Buffer> {
  const sink = new PassThrough();
  const parts: Buffer[] = [];
  sink.on('data', (part: Buffer) => parts.push(part));
  const writer = new FrameWriter(sink, bucket);
  await write(writer);
  await writer.end();
  return Buffer.concat(parts);
}

async function parse(pieces: Buffer[], maxPayloadBytes = 1 << 20): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const frame of readFrames(Readable.from(pieces), () => maxPayloadBytes)) out.push(frame);
  return out;
}

const sample = async (writer: FrameWriter): Promise<void> => {
  await writer.write('zero', Buffer.from([0, 0, 0, 7]));
  await writer.write('end', Buffer.alloc(0));
  await writer.write('data', Buffer.from('head'), Buffer.alloc(20_000, 5));
};

test('frames survive any split of the byte stream, down to single bytes', async () => {
  const bytes = await written(sample);
  for (const pieceBytes of [1, 3, 4096, bytes.length]) {
    const pieces: Buffer[] = [];
    for (let at = 0; at < bytes.length; at += pieceBytes) pieces.push(bytes.subarray(at, at + pieceBytes));
    const frames = await parse(pieces);
    assert.deepEqual(frames.map((f) => [f.type, f.payload.length]), [['zero', 4], ['end', 0], ['data', 20_004]], `pieces of ${pieceBytes}`);
    assert.ok(frames[2]?.payload.subarray(4).every((b) => b === 5));
  }
});

test('concurrent writers never interleave frames, and a bucket only slices them', async () => {
  const bucket = new TokenBucket({ bytesPerSec: 50_000_000, burstBytes: 1000 });
  const plain = await written((w) => Promise.all([w.write('ack', Buffer.alloc(400, 1)), w.write('data', Buffer.alloc(3000, 2), Buffer.alloc(5000, 3))]).then(() => undefined));
  const paced = await written((w) => Promise.all([w.write('ack', Buffer.alloc(400, 1)), w.write('data', Buffer.alloc(3000, 2), Buffer.alloc(5000, 3))]).then(() => undefined), bucket);
  assert.ok(paced.equals(plain));
  assert.deepEqual((await parse([plain])).map((f) => f.type), ['ack', 'data']);
});

test('a frame above the size limit is refused before it is buffered', async () => {
  const bytes = await written(sample);
  await assert.rejects(parse([bytes], 10_000), { name: 'DataPlaneError', code: 'ProtocolError' });
});

test('a stream cut inside a frame is a lost connection; an unknown frame type a protocol error', async () => {
  const bytes = await written(sample);
  await assert.rejects(parse([bytes.subarray(0, bytes.length - 1)]), { code: 'ConnectionLost', retryable: true });
  await assert.rejects(parse([Buffer.from([99, 0, 0, 0, 0])]), { code: 'ProtocolError', retryable: false });
});
