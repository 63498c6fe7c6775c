import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { AppError } from '../core/errors.ts';
import type { Trx } from '../engine/job-store.ts';
import type { Db } from '../store/database.ts';
import { PreparedQuery, type Slots } from '../store/prepared-query.ts';

/** Resources that carry tags; the tag API serves the first two (smc-api.md §3), workgroups take them at creation. */
export type TagResourceType = 'sourceserver' | 'replicationjob' | 'workgroup';

export interface Tag {
  readonly key: string;
  readonly value: string;
}

/** A Tag.N filter of a Describe call: a resource matches when it has the key (and the value, if given). */
export interface TagFilter {
  readonly key?: string | undefined;
  readonly value?: string | undefined;
}

/** Most tags on one resource, and in one Tag.N or TagKey.N list. */
export const maxTags = 20;

const reservedPrefix = /^(aliyun|acs:|https?:\/\/)/i;

/** Check a Tag.N list as given to a create or TagResources: 1–128-character keys, ≤128-character values, no reserved prefixes. */
export function checkTags(tags: readonly TagFilter[] | undefined, where: string): Tag[] {
  const list = tags ?? [];
  if (list.length > maxTags) throw new AppError('NumberExceedTags', { limit: maxTags, where, count: list.length });
  const seen = new Set<string>();
  return list.map((tag, i) => {
    const key = tag.key ?? '';
    const value = tag.value ?? '';
    if (key === '') throw new AppError('MissingParameter', { name: `Tag.${i + 1}.Key` });
    if (key.length > 128) throw new AppError('InvalidParameter', { name: `Tag.${i + 1}.Key`, reason: 'must be at most 128 characters long' });
    if (reservedPrefix.test(key)) throw new AppError('InvalidParameter', { name: `Tag.${i + 1}.Key`, reason: 'must not start with aliyun, acs:, http:// or https://' });
    if (value.length > 128) throw new AppError('InvalidParameter', { name: `Tag.${i + 1}.Value`, reason: 'must be at most 128 characters long' });
    if (reservedPrefix.test(value)) throw new AppError('InvalidParameter', { name: `Tag.${i + 1}.Value`, reason: 'must not start with aliyun, acs:, http:// or https://' });
    if (seen.has(key)) throw new AppError('InvalidParameter', { name: `Tag.${i + 1}.Key`, reason: `repeats the key ${key}` });
    seen.add(key);
    return { key, value };
  });
}

/** Check the Tag.N filter of a Describe or List call: at most 20, and no value without a key. */
export function checkTagFilters(filters: readonly TagFilter[] | undefined): TagFilter[] {
  const list = filters ?? [];
  if (list.length > maxTags) throw new AppError('NumberExceedTags', { limit: maxTags, where: 'in a Tag.N filter', count: list.length });
  list.forEach((f, i) => {
    if ((f.key ?? '') === '' && f.value !== undefined) throw new AppError('InvalidParameterTagValue', { index: i + 1 });
  });
  return list.filter((f) => (f.key ?? '') !== '');
}

/** A tag condition's key and value: text, or placeholders of a prepared query. */
export interface TagMatch {
  readonly key?: string | RawBuilder<string> | undefined;
  readonly value?: string | RawBuilder<string> | undefined;
}

/** SQL: the row whose id is `idColumn` carries every tag of `filters`. */
export function hasTags(type: TagResourceType, idColumn: string, filters: readonly TagMatch[]): RawBuilder<SqlBool>[] {
  return filters.map(
    (f) =>
      sql<SqlBool>`exists (select 1 from smc_tags t where t.resource_type = ${type} and t.resource_id = ${sql.ref(idColumn)} and t.tag_key = ${f.key ?? ''}${
        f.value === undefined ? sql`` : sql` and t.tag_value = ${f.value}`
      })`,
  );
}

/** Set tags on resources (a key already there gets the new value); more than 20 on one resource is NumberExceed.Tags. */
export async function setTags(trx: Trx, accountId: string, type: TagResourceType, resourceIds: readonly string[], tags: readonly Tag[], nowMs: number): Promise<void> {
  if (resourceIds.length === 0 || tags.length === 0) return;
  for (const resourceId of resourceIds) {
    for (const tag of tags) {
      await trx
        .insertInto('smc_tags')
        .values({ account_id: accountId, resource_type: type, resource_id: resourceId, tag_key: tag.key, tag_value: tag.value, created_at: nowMs })
        .onConflict((oc) => oc.columns(['resource_type', 'resource_id', 'tag_key']).doUpdateSet({ tag_value: tag.value }))
        .execute();
    }
  }
  const counts = await trx
    .selectFrom('smc_tags')
    .select(['resource_id', (eb) => eb.fn.countAll<number>().as('n')])
    .where('resource_type', '=', type)
    .where('resource_id', 'in', [...resourceIds])
    .groupBy('resource_id')
    .execute();
  const over = counts.find((c) => Number(c.n) > maxTags);
  if (over !== undefined) throw new AppError('NumberExceedTags', { limit: maxTags, where: `on ${over.resource_id}`, count: Number(over.n) });
}

// Read for every page of every Describe call: compiled once per number of ids.
const tagsOfResources = new PreparedQuery((db, slot: Slots<{ type: TagResourceType; ids: readonly string[] }>) =>
  db
    .selectFrom('smc_tags')
    .select(['resource_id', 'tag_key', 'tag_value'])
    .where('resource_type', '=', slot.value('type'))
    .where('resource_id', 'in', slot.items('ids'))
    .orderBy('resource_id')
    .orderBy('tag_key'),
);

/** Every tag of the given resources, by resource id, keys in order. */
export async function tagsOf(db: Db, type: TagResourceType, resourceIds: readonly string[]): Promise<Map<string, Tag[]>> {
  const out = new Map<string, Tag[]>(resourceIds.map((id) => [id, []]));
  if (resourceIds.length === 0) return out;
  const rows = await tagsOfResources.rows(db, { type, ids: resourceIds });
  for (const row of rows) out.get(row.resource_id)?.push({ key: row.tag_key, value: row.tag_value });
  return out;
}

export async function deleteTagsOf(trx: Trx, type: TagResourceType, resourceIds: readonly string[]): Promise<void> {
  if (resourceIds.length === 0) return;
  await trx.deleteFrom('smc_tags').where('resource_type', '=', type).where('resource_id', 'in', [...resourceIds]).execute();
}
