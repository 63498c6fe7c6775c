import { randomBytes, randomInt } from 'node:crypto';
import type { Trx } from './placement/claims.ts';

/** 16 digits, the form of an Alibaba account id. */
function newAccountId(): string {
  return `${randomInt(1, 10)}${Array.from({ length: 15 }, () => randomInt(0, 10)).join('')}`;
}

/**
 * The ids of the accounts a fleet file names. A name that does not exist yet is created, with a
 * generated id and a generated 32-hex project id, so a demo fleet works on an empty database;
 * the identity layer later hands out keys for it by the same name.
 */
export async function resolveAccountNames(trx: Trx, names: readonly string[], nowMs: number): Promise<{ idOf: Map<string, string>; created: string[] }> {
  const idOf = new Map<string, string>();
  const created: string[] = [];
  const unique = [...new Set(names)].sort();
  if (unique.length === 0) return { idOf, created };
  const load = async (): Promise<void> => {
    for (const row of await trx.selectFrom('accounts').select(['id', 'name']).where('name', 'in', unique).execute()) idOf.set(row.name, row.id);
  };
  await load();
  const generated = new Map<string, string>();
  for (const name of unique.filter((n) => !idOf.has(n))) {
    const id = newAccountId();
    generated.set(name, id);
    // Another process (identity's create-key) may create the same name meanwhile: theirs wins.
    await trx
      .insertInto('accounts')
      .values({ id, name, project_id: randomBytes(16).toString('hex'), created_at: nowMs })
      .onConflict((oc) => oc.column('name').doNothing())
      .execute();
  }
  if (generated.size > 0) await load();
  for (const [name, id] of generated) if (idOf.get(name) === id) created.push(name);
  return { idOf, created };
}
