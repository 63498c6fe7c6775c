import { AppError } from '../core/errors.ts';

/** SMC list paging (smc-api.md §4): PageNumber from 1, PageSize 1–50, default 1 and 10. */
export interface PageRequest {
  readonly pageNumber?: number | undefined;
  readonly pageSize?: number | undefined;
}

export interface Page<T> {
  readonly pageNumber: number;
  readonly pageSize: number;
  readonly totalCount: number;
  readonly items: readonly T[];
}

export const maxPageSize = 50;
/** At most this many ids in one JobId.N, SourceId.N, ResourceId.N or WorkgroupId.N filter. */
export const maxIdsPerFilter = 50;

/** The page's number, size and row offset, after checking their bounds. */
export function pageWindow(request: PageRequest): { pageNumber: number; pageSize: number; offset: number } {
  const pageNumber = request.pageNumber ?? 1;
  const pageSize = request.pageSize ?? 10;
  if (!Number.isInteger(pageNumber) || pageNumber < 1) throw new AppError('InvalidParameter', { name: 'PageNumber', reason: 'must be a whole number from 1' });
  if (!Number.isInteger(pageSize) || pageSize < 1 || pageSize > maxPageSize) {
    throw new AppError('InvalidParameter', { name: 'PageSize', reason: `must be a whole number from 1 to ${maxPageSize}` });
  }
  return { pageNumber, pageSize, offset: (pageNumber - 1) * pageSize };
}

/** An id-list filter: at most 50 ids (more is InvalidParameter); empty means no filter. */
export function idFilter(name: string, ids: readonly string[] | undefined): readonly string[] | undefined {
  if (ids === undefined || ids.length === 0) return undefined;
  if (ids.length > maxIdsPerFilter) throw new AppError('InvalidParameter', { name, reason: `has ${ids.length} ids; at most ${maxIdsPerFilter} are accepted` });
  return ids;
}

/**
 * The total behind a page of `rows` rows: a page that is not full and not past the end closes the
 * list, so its total needs no count; otherwise `count` asks the database.
 */
export async function pageTotal(window: { readonly offset: number; readonly pageSize: number }, rows: number, count: () => Promise<number>): Promise<number> {
  if (rows < window.pageSize && (rows > 0 || window.offset === 0)) return window.offset + rows;
  return count();
}
