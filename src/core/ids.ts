import { randomBytes, randomUUID } from 'node:crypto';

const alphabet = '0123456789abcdefghijklmnopqrstuvwxyz';

/** A random lower-case id of `length` base-36 characters. */
export function randomId(length: number): string {
  const bytes = randomBytes(length);
  let out = '';
  for (const byte of bytes) out += alphabet[byte % alphabet.length];
  return out;
}

/** Resource ids in the cloud's style: `<prefix>-<20 chars>`, e.g. `j-3x9...`. */
export function newId(prefix: string): string {
  return `${prefix}-${randomId(20)}`;
}

/** A request id in the GUID-like form the clouds answer with. */
export function newRequestId(): string {
  // randomUUID draws from a pooled entropy buffer: far cheaper per request than randomBytes(16).
  return randomUUID().toUpperCase();
}
