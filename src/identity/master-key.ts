import { randomBytes } from 'node:crypto';
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { AppError } from '../core/errors.ts';
import type { Db } from '../store/database.ts';
import { SecretBox } from './secret-box.ts';

const keyFileName = 'master.key';

function decodeKey(text: string, source: string): Buffer {
  const trimmed = text.trim();
  const key = /^[0-9a-fA-F]{64}$/.test(trimmed) ? Buffer.from(trimmed, 'hex') : Buffer.from(trimmed, 'base64');
  if (key.length !== 32) {
    throw new AppError('InvalidParameter', { name: source, reason: 'a master key is 32 bytes, written as 64 hex or 44 base64 characters' });
  }
  return key;
}

/**
 * The master key: FERRY_MASTER_KEY when set (several nodes share one database), else
 * `<dataDir>/master.key`, created on first use with mode 0600. Creation uses an exclusive
 * open so a server and `ferry admin` starting together agree on one key.
 */
export function loadMasterKey(dataDir: string, env: NodeJS.ProcessEnv = process.env): Buffer {
  const fromEnv = env['FERRY_MASTER_KEY'];
  if (fromEnv !== undefined && fromEnv !== '') return decodeKey(fromEnv, 'FERRY_MASTER_KEY');
  mkdirSync(dataDir, { recursive: true });
  const path = join(dataDir, keyFileName);
  try {
    writeFileSync(path, `${randomBytes(32).toString('base64')}\n`, { flag: 'wx', mode: 0o600 });
  } catch (err) {
    if ((err as NodeJS.ErrnoException).code !== 'EEXIST') throw err;
  }
  return decodeKey(readFileSync(path, 'utf8'), path);
}

const fingerprintKey = 'master_key_fingerprint';

/**
 * Bind the database to the master key: the first opener records the key's fingerprint,
 * later openers must match it, so a wrong key fails at start and not at the first request.
 */
export async function openSecretBox(db: Db, masterKey: Buffer): Promise<SecretBox> {
  const box = new SecretBox(masterKey);
  const fingerprint = box.fingerprint();
  await db.insertInto('meta').values({ key: fingerprintKey, value: fingerprint }).onConflict((oc) => oc.column('key').doNothing()).execute();
  const row = await db.selectFrom('meta').select('value').where('key', '=', fingerprintKey).executeTakeFirstOrThrow();
  if (!box.matches(row.value)) throw new AppError('MasterKeyMismatch');
  return box;
}
