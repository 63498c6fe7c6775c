import { timingSafeEqual } from 'node:crypto';

/**
 * Compare a client's signature with ours without leaking, through timing, how much of it matched.
 * A presented signature of another length is refused at once: that reveals only the length of
 * ours, which its algorithm fixes and every client knows (28 base64 characters for HMAC-SHA1,
 * 64 hex digits for HMAC-SHA256).
 */
export function constantTimeEqual(presented: string, expected: string): boolean {
  const left = Buffer.from(presented, 'utf8');
  const right = Buffer.from(expected, 'utf8');
  return left.length === right.length && timingSafeEqual(left, right);
}
