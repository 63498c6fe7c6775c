import assert from 'node:assert/strict';
import { test } from 'node:test';
import { parseListenAddress } from './listen-address.ts';

test('parses host:port, IPv6 and port 0', () => {
  assert.deepEqual(parseListenAddress('127.0.0.1:8080'), { host: '127.0.0.1', port: 8080 });
  assert.deepEqual(parseListenAddress('[::1]:0'), { host: '::1', port: 0 });
  assert.deepEqual(parseListenAddress('localhost:65535'), { host: 'localhost', port: 65535 });
});

test('refuses what is not HOST:PORT', () => {
  for (const bad of ['8080', '127.0.0.1', '127.0.0.1:99999', ':80', 'a:b']) {
    assert.throws(() => parseListenAddress(bad), /--listen/);
  }
});
