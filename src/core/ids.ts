import { randomBytes } from 'node:crypto';

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
  const hex = randomBytes(16).toString('hex').toUpperCase();
  return `${hex.slice(0, 8)}-${hex.slice(8, 12)}-${hex.slice(12, 16)}-${hex.slice(16, 20)}-${hex.slice(20)}`;
}
