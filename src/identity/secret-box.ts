import { createCipheriv, createDecipheriv, createHmac, randomBytes, timingSafeEqual } from 'node:crypto';

/**
 * Secrets at rest: AES-256-GCM under the master key. The stored form is
 * `v1:<iv>:<tag>:<ciphertext>` in base64url, so the format can change without ambiguity.
 */
export class SecretBox {
  readonly #key: Buffer;

  constructor(masterKey: Buffer) {
    if (masterKey.length !== 32) throw new Error(`master key must be 32 bytes, got ${masterKey.length}`);
    this.#key = masterKey;
  }

  seal(plaintext: string, associatedData: string): string {
    const iv = randomBytes(12);
    const cipher = createCipheriv('aes-256-gcm', this.#key, iv);
    cipher.setAAD(Buffer.from(associatedData, 'utf8'));
    const data = Buffer.concat([cipher.update(plaintext, 'utf8'), cipher.final()]);
    return ['v1', iv.toString('base64url'), cipher.getAuthTag().toString('base64url'), data.toString('base64url')].join(':');
  }

  /** Throws when the ciphertext was made under another key or for another record. */
  open(sealed: string, associatedData: string): string {
    const [version, iv, tag, data] = sealed.split(':');
    if (version !== 'v1' || iv === undefined || tag === undefined || data === undefined) {
      throw new Error('unknown sealed secret format');
    }
    const decipher = createDecipheriv('aes-256-gcm', this.#key, Buffer.from(iv, 'base64url'));
    decipher.setAAD(Buffer.from(associatedData, 'utf8'));
    decipher.setAuthTag(Buffer.from(tag, 'base64url'));
    return Buffer.concat([decipher.update(Buffer.from(data, 'base64url')), decipher.final()]).toString('utf8');
  }

  /** A value that identifies the key without revealing it; stored to catch a wrong master key early. */
  fingerprint(): string {
    return createHmac('sha256', this.#key).update('ferry master key check v1').digest('hex');
  }

  matches(fingerprint: string): boolean {
    const mine = Buffer.from(this.fingerprint(), 'hex');
    const theirs = Buffer.from(fingerprint, 'hex');
    return mine.length === theirs.length && timingSafeEqual(mine, theirs);
  }
}
