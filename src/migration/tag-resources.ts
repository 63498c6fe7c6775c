import { AppError } from '../core/errors.ts';
import type { Trx } from '../engine/job-store.ts';
import { maxIdsPerFilter } from './paging.ts';
import type { ServiceContext } from './service-context.ts';
import { type TagFilter, checkTagFilters, checkTags, hasTags, maxTags, setTags } from './tags.ts';

/** Resource types of the tag API, with the name its answers echo (smc-api.md §3). */
export const taggableTypes = { sourceserver: 'ALIYUN::SMC::SOURCESERVER', replicationjob: 'ALIYUN::SMC::REPLICATIONJOB' } as const;
export type TaggableType = keyof typeof taggableTypes;

const tablesOf = { sourceserver: 'source_servers', replicationjob: 'replication_jobs' } as const;

/** Tags per ListTagResources page. */
export const tagPageSize = 50;

function checkResourceType(type: string | undefined): TaggableType {
  if (type === undefined || type === '') throw new AppError('MissingParameterResourceType');
  const lower = type.toLowerCase();
  if (!(lower in taggableTypes)) throw new AppError('InvalidResourceTypeNotFound', { resourceType: type });
  return lower as TaggableType;
}

function checkResourceIds(ids: readonly string[] | undefined, required: boolean): readonly string[] {
  const list = ids ?? [];
  if (required && list.length === 0) throw new AppError('MissingParameter', { name: 'ResourceId.N' });
  if (list.length > maxIdsPerFilter) throw new AppError('NumberExceedResourceIds', { limit: maxIdsPerFilter, count: list.length });
  const seen = new Set<string>();
  for (const id of list) {
    if (seen.has(id)) throw new AppError('DuplicateResourceId', { resourceId: id });
    seen.add(id);
  }
  return list;
}

/** Every id must name a resource of the caller's account; otherwise InvalidResourceId.NotFound lists the others. */
async function requireResources(trx: Trx, accountId: string, type: TaggableType, ids: readonly string[]): Promise<void> {
  const found = await trx.selectFrom(tablesOf[type]).select('id').where('account_id', '=', accountId).where('id', 'in', [...ids]).execute();
  const missing = ids.filter((id) => !found.some((f) => f.id === id));
  if (missing.length > 0) throw new AppError('InvalidResourceIdNotFound', { resourceType: type, resourceIds: missing.join(', ') });
}

export interface TagResourceView {
  readonly resourceId: string;
  readonly resourceType: string;
  readonly tagKey: string;
  readonly tagValue: string;
}

function encodeToken(resourceId: string, tagKey: string): string {
  return Buffer.from(JSON.stringify([resourceId, tagKey])).toString('base64url');
}

function decodeToken(token: string): [string, string] {
  try {
    const value: unknown = JSON.parse(Buffer.from(token, 'base64url').toString('utf8'));
    if (Array.isArray(value) && value.length === 2 && typeof value[0] === 'string' && typeof value[1] === 'string') return [value[0], value[1]];
  } catch {
    // fall through: not a token this server issued
  }
  throw new AppError('InvalidParameter', { name: 'NextToken', reason: 'is not a token from an earlier ListTagResources answer' });
}

/**
 * ListTagResources: the tags of the account's resources of `resourceType` that are among
 * `resourceIds` (when given) and carry every Tag.N filter; 50 per page, in resource and key order.
 * NextToken is empty on the last page.
 */
export async function listTagResources(
  ctx: ServiceContext,
  input: { resourceType?: string | undefined; resourceIds?: readonly string[] | undefined; tags?: readonly TagFilter[] | undefined; nextToken?: string | undefined },
): Promise<{ tagResources: TagResourceView[]; nextToken: string }> {
  const type = checkResourceType(input.resourceType);
  const ids = checkResourceIds(input.resourceIds, false);
  const filters = checkTagFilters(input.tags);
  let query = ctx.database.db.selectFrom('smc_tags').select(['resource_id', 'tag_key', 'tag_value']).where('account_id', '=', ctx.accountId).where('resource_type', '=', type);
  if (ids.length > 0) query = query.where('resource_id', 'in', [...ids]);
  for (const condition of hasTags(type, 'smc_tags.resource_id', filters)) query = query.where(condition);
  if (input.nextToken !== undefined && input.nextToken !== '') {
    const [afterId, afterKey] = decodeToken(input.nextToken);
    query = query.where((eb) => eb.or([eb('resource_id', '>', afterId), eb.and([eb('resource_id', '=', afterId), eb('tag_key', '>', afterKey)])]));
  }
  const rows = await query.orderBy('resource_id').orderBy('tag_key').limit(tagPageSize + 1).execute();
  const page = rows.slice(0, tagPageSize);
  const last = page[page.length - 1];
  return {
    tagResources: page.map((r) => ({ resourceId: r.resource_id, resourceType: taggableTypes[type], tagKey: r.tag_key, tagValue: r.tag_value })),
    nextToken: rows.length > tagPageSize && last !== undefined ? encodeToken(last.resource_id, last.tag_key) : '',
  };
}

/** TagResources: 1–50 resources, 1–20 tags; a resource may carry at most 20 tags in all. */
export async function tagResources(ctx: ServiceContext, input: { resourceType?: string | undefined; resourceIds?: readonly string[] | undefined; tags?: readonly TagFilter[] | undefined }): Promise<void> {
  const type = checkResourceType(input.resourceType);
  const ids = checkResourceIds(input.resourceIds, true);
  const tags = checkTags(input.tags, 'in one request');
  if (tags.length === 0) throw new AppError('MissingParameter', { name: 'Tag.N' });
  await ctx.database.db.transaction().execute(async (trx) => {
    await requireResources(trx, ctx.accountId, type, ids);
    await setTags(trx, ctx.accountId, type, ids, tags, ctx.clock.nowMs());
  });
}

/** UntagResources: remove TagKey.N (at most 20) from the resources, or every tag with All=true and no TagKey. */
export async function untagResources(
  ctx: ServiceContext,
  input: { resourceType?: string | undefined; resourceIds?: readonly string[] | undefined; tagKeys?: readonly string[] | undefined; all?: boolean | undefined },
): Promise<void> {
  const type = checkResourceType(input.resourceType);
  const ids = checkResourceIds(input.resourceIds, true);
  const keys = input.tagKeys ?? [];
  if (keys.length > maxTags) throw new AppError('NumberExceedTags', { limit: maxTags, where: 'in TagKey.N', count: keys.length });
  if (input.all === true && keys.length > 0) throw new AppError('InvalidParameter', { name: 'All', reason: 'applies only when no TagKey.N is given' });
  if (input.all !== true && keys.length === 0) throw new AppError('MissingParameter', { name: 'TagKey.N (or All=true)' });
  await ctx.database.db.transaction().execute(async (trx) => {
    await requireResources(trx, ctx.accountId, type, ids);
    let query = trx.deleteFrom('smc_tags').where('account_id', '=', ctx.accountId).where('resource_type', '=', type).where('resource_id', 'in', [...ids]);
    if (keys.length > 0) query = query.where('tag_key', 'in', [...keys]);
    await query.execute();
  });
}
