import assert from 'node:assert/strict';
import { randomFillSync } from 'node:crypto';
import { test } from 'node:test';
import { openFrames } from './frame-reader.ts';
import { loopbackPair } from './loopback-pair.ts';
import { type Frame, FrameWriter } from './protocol.ts';

const MiB = 1024 * 1024;

async function collect(frames: AsyncGenerator<Frame>, count: number): Promise<Frame[]> {
  const out: Frame[] = [];
  for await (const frame of frames) {
    out.push(frame);
    if (out.length === count) break;
  }
  return out;
}

test('a TCP socket re-opened for frames reads them whole, head bytes first, and answers through the new socket', async () => {
  const { client, server } = await loopbackPair();
  const big = randomFillSync(Buffer.alloc(5 * MiB + 3));
  const writer = new FrameWriter(client);
  // What an HTTP upgrade leaves behind: the first bytes already read, put back into the socket.
  const head = Buffer.from([4, 0, 0, 0, 4, 0, 0, 0, 9]);
  server.pause();
  server.unshift(head);
  const opened = openFrames(server, () => 8 * MiB, (n) => Buffer.alloc(n));
  assert.notEqual(opened.link, server, 'the socket was re-opened on its handle');
  const sending = (async () => {
    await writer.write('ack', Buffer.from([0, 0, 0, 1, 0, 0, 0, 2]));
    await writer.write('data', Buffer.from('head'), big);
    await writer.write('end', Buffer.alloc(0));
  })();
  const frames = await collect(opened.frames, 4);
  await sending;
  assert.deepEqual(frames.map((f) => [f.type, f.payload.length]), [['zero', 4], ['ack', 8], ['data', big.length + 4], ['end', 0]]);
  assert.equal(frames[0]?.payload.readUInt32BE(0), 9);
  assert.ok(frames[2]?.payload.subarray(4).equals(big));
  assert.equal(opened.bytesRead(), head.length + (5 + 8) + (5 + 4 + big.length) + 5, 'every byte read, frame headers included');

  const answer = new Promise<Buffer>((resolve) => client.once('data', resolve));
  opened.link.write('done');
  assert.equal((await answer).toString(), 'done');
  opened.link.destroy();
  client.destroy();
});

test('a re-opened socket closed inside a frame is a lost connection', async () => {
  const { client, server } = await loopbackPair();
  const opened = openFrames(server, () => MiB, (n) => Buffer.alloc(n));
  client.end(Buffer.from([3, 0, 0, 1, 0, 1, 2, 3]));
  await assert.rejects(collect(opened.frames, 1), { name: 'DataPlaneError', code: 'ConnectionLost' });
  opened.link.destroy();
});

test('a frame above the limit on a re-opened socket is a protocol error, and no buffer is made for it', async () => {
  const { client, server } = await loopbackPair();
  const sizes: number[] = [];
  const opened = openFrames(server, () => 1000, (n) => (sizes.push(n), Buffer.alloc(n)));
  client.write(Buffer.from([3, 0, 0, 0x10, 0]));
  await assert.rejects(collect(opened.frames, 1), { code: 'ProtocolError' });
  assert.deepEqual(sizes, []);
  opened.link.destroy();
  client.destroy();
});
