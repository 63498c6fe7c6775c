/**
 * Node reads every socket into a fresh 64 KiB buffer from malloc. glibc gives the top of its heap
 * back to the kernel whenever more than 128 KiB of it is free, so a process that receives at
 * disk speed maps those pages in, frees them at the next GC, unmaps them, and faults them in
 * again: 2 GiB received by a bare Node socket cost 108-258k page faults and 2.8-5 s of system
 * time here, against 13k faults and 0.8-1.1 s once the heap keeps its free top.
 *
 * glibc raises that limit by itself (to twice the block's size, M_TRIM_THRESHOLD in mallopt(3))
 * the first time a block larger than its mmap threshold is freed; environment variables
 * (MALLOC_TRIM_THRESHOLD_) would do the same but must be set before the process starts. So a
 * receiver drops one such block early: the next garbage collection frees it, and from then on
 * the process keeps up to twice its size of freed heap for the next socket reads.
 */

/** Size of the block dropped; the process then keeps up to twice this much freed heap. */
const blockBytes = 31 * 1024 * 1024;

let done = false;

/** Once per process: let the malloc heap keep freed socket buffers instead of returning them at once. */
export function keepFreedHeap(): void {
  if (done) return;
  done = true;
  // allocUnsafeSlow: a malloc'd block of its own (mmapped at this size), not a slice of Node's buffer pool.
  Buffer.allocUnsafeSlow(blockBytes);
}
