/**
 * `ferry serve --demo`: a node ready to try out. It applies the fleet file of DESIGN.md (two hosts,
 * one of them a dedicated host, and instance i-1 with a seeded disk; idempotent, so a restart
 * changes nothing) and hands out an access key of the operator account. The key is made on the
 * first demo start and its id kept in `<data>/demo-key.json`; later demo starts show the same key,
 * and never any other key of the account.
 */
import { readFileSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import type { Runtime } from '../api/runtime.ts';
import { isAppError } from '../core/errors.ts';
import { applyFleet, type ApplyFleetResult, demoFleet } from '../fleet/index.ts';
import { createAccessKey } from '../identity/access-keys.ts';
import { ensureAccount } from '../identity/accounts.ts';
import { operatorAccountName } from '../migration/operators.ts';

export interface DemoSetup {
  readonly fleet: ApplyFleetResult;
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
}

function keptKeyId(file: string): string | undefined {
  try {
    const kept = JSON.parse(readFileSync(file, 'utf8')) as { accessKeyId?: unknown };
    return typeof kept.accessKeyId === 'string' ? kept.accessKeyId : undefined;
  } catch {
    return undefined;
  }
}

/** Apply the demo fleet and find (or make) the demo key. */
export async function setUpDemo(runtime: Runtime): Promise<DemoSetup> {
  const fleet = await applyFleet(runtime.database, runtime.driver, demoFleet, { clock: runtime.clock });
  const file = join(runtime.dataDir, 'demo-key.json');
  const keptId = keptKeyId(file);
  if (keptId !== undefined) {
    try {
      const { key } = await runtime.keys.find(keptId);
      if (key.status === 'Active') return { fleet, accessKeyId: key.id, accessKeySecret: key.secret };
    } catch (err) {
      // Deleted since: make a new one below.
      if (!isAppError(err)) throw err;
    }
  }
  const account = await ensureAccount(runtime.database.db, runtime.clock, operatorAccountName);
  const key = await createAccessKey(runtime.database.db, runtime.secrets, runtime.clock, account.id);
  writeFileSync(file, `${JSON.stringify({ accessKeyId: key.id })}\n`, { mode: 0o600 });
  return { fleet, accessKeyId: key.id, accessKeySecret: key.secret };
}

/** What `serve --demo` prints on stderr once it listens at `url`. */
export function demoBanner(setup: DemoSetup, url: string): string {
  const { created, updated, unchanged } = setup.fleet.counts;
  return (
    `ferry: demo fleet applied (created ${created}, updated ${updated}, unchanged ${unchanged}): hosts host-h1 and host-h2 (dedicated host dh-1), instance i-1\n` +
    `ferry: demo access key of account ${operatorAccountName}; to use it:\n` +
    `export FERRY_ENDPOINT=${url} FERRY_ACCESS_KEY_ID=${setup.accessKeyId} FERRY_ACCESS_KEY_SECRET=${setup.accessKeySecret}\n` +
    `ferry: then try: npx ferry fleet show --json; npx ferry instance show i-1 --json\n`
  );
}
