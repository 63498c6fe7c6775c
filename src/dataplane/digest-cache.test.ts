import assert from 'node:assert/strict';
import { randomBytes } from 'node:crypto';
import { join } from 'node:path';
import { describe, it } from 'node:test';
import { tempDir } from '../../test/support/dialects.ts';
import { DigestCache } from './digest-cache.ts';
import { chunkDigest } from './manifest.ts';

describe('DigestCache', () => {
  it('remembers SHA-256 of unchanged chunks across a save and load, and hashes changed ones again', async () => {
    const path = join(tempDir(), 'disk.cache');
    const chunks = [randomBytes(4096), randomBytes(4096), randomBytes(1000)];
    const first = await DigestCache.load(path, 9192, 4096);
    chunks.forEach((data, i) => assert.deepEqual(first.digestOf(i, data), chunkDigest(data)));
    assert.equal(first.hits, 0);
    await first.save();

    const changed = randomBytes(4096);
    const second = await DigestCache.load(path, 9192, 4096);
    assert.deepEqual(second.digestOf(0, chunks[0] ?? Buffer.alloc(0)), chunkDigest(chunks[0] ?? Buffer.alloc(0)));
    assert.deepEqual(second.digestOf(1, changed), chunkDigest(changed), 'a changed chunk gets its own digest');
    assert.deepEqual(second.digestOf(2, chunks[2] ?? Buffer.alloc(0)), chunkDigest(chunks[2] ?? Buffer.alloc(0)));
    assert.equal(second.hits, 2);
  });

  it('starts empty for a disk of another size or chunk size', async () => {
    const path = join(tempDir(), 'disk.cache');
    const data = randomBytes(4096);
    const cache = await DigestCache.load(path, 4096, 4096);
    cache.digestOf(0, data);
    await cache.save();
    const resized = await DigestCache.load(path, 8192, 4096);
    resized.digestOf(0, data);
    assert.equal(resized.hits, 0);
  });
});
