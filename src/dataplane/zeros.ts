/**
 * All-zero bytes: a shared read-only zero buffer and the fast test for "is this chunk all zero".
 * `buf.equals(zeros)` runs in native code at about 12.5 GiB/s worst case; JS loops manage
 * 0.6-4.9 GiB/s (BASELINES 4.1), so a chunk is never scanned byte by byte.
 */

let shared = Buffer.alloc(0);

/** A buffer of `lengthBytes` zeros; shared, so callers must never write into it. */
export function zeroBuffer(lengthBytes: number): Buffer {
  if (shared.length < lengthBytes) shared = Buffer.alloc(lengthBytes);
  return shared.subarray(0, lengthBytes);
}

/** True when every byte of `data` is zero. */
export function isAllZero(data: Uint8Array): boolean {
  if (data.length === 0) return true;
  // The first byte settles most data chunks without touching the zero buffer.
  if (data[0] !== 0) return false;
  return Buffer.from(data.buffer, data.byteOffset, data.length).equals(zeroBuffer(data.length));
}
