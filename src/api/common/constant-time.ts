import { createHash, timingSafeEqual } from 'node:crypto';

/**
 * Compare a client's signature with ours without leaking, through timing, how much of it matched.
 * Both sides are hashed first so inputs of different lengths compare in the same time too.
 */
export function constantTimeEqual(presented: string, expected: string): boolean {
  const left = createHash('sha256').update(presented, 'utf8').digest();
  const right = createHash('sha256').update(expected, 'utf8').digest();
  return timingSafeEqual(left, right);
}
