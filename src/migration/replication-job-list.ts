import { crossZoneJobType, describeCrossZoneJobs } from './cross-zone.ts';
import { maxPageSize } from './paging.ts';
import type { ReplicationJobView } from './replication-job-views.ts';
import type { DescribeReplicationJobsFilter } from './replication-jobs.ts';
import type { ServiceContext } from './service-context.ts';

/** The DescribeReplicationJobs filters that decide which cross-zone jobs (JobType 2) belong in the answer. */
export type CrossZoneListFilter = Omit<DescribeReplicationJobsFilter, 'tags' | 'pageNumber' | 'pageSize'> & { readonly tagCount: number };

const given = (value: string | undefined): value is string => value !== undefined && value !== '';

/**
 * The caller's cross-zone jobs that DescribeReplicationJobs lists beside its replication jobs
 * (smc-api.md §1: they share JobId and the JobType enum), newest first. They have no source, name or
 * tags, so a filter on those excludes them all. An account has few; they are read whole.
 */
export async function crossZoneJobsFor(ctx: ServiceContext, filter: CrossZoneListFilter): Promise<ReplicationJobView[]> {
  if (filter.jobType !== undefined && filter.jobType !== crossZoneJobType) return [];
  if ((filter.sourceIds?.length ?? 0) > 0 || given(filter.name) || filter.tagCount > 0) return [];
  const all: ReplicationJobView[] = [];
  for (let pageNumber = 1; ; pageNumber += 1) {
    const page = await describeCrossZoneJobs(ctx, { jobIds: filter.jobIds, instanceIds: filter.instanceIds, status: filter.status, pageNumber, pageSize: maxPageSize });
    all.push(...page.items);
    if (page.items.length === 0 || all.length >= page.totalCount) break;
  }
  return all.filter(
    (job) =>
      (!given(filter.regionId) || job.regionId === filter.regionId) &&
      (!given(filter.businessStatus) || job.businessStatus === filter.businessStatus) &&
      (!given(filter.resourceGroupId) || job.resourceGroupId === filter.resourceGroupId),
  );
}

/** One entry of the merged list: when it was created and its id, the order of both lists. */
export interface Listed {
  readonly createdAtMs: number;
  readonly id: string;
}

/** Newest first, then by id: the order DescribeReplicationJobs pages in. */
export function newestFirst(a: Listed, b: Listed): number {
  return b.createdAtMs - a.createdAtMs || (a.id < b.id ? -1 : a.id > b.id ? 1 : 0);
}
