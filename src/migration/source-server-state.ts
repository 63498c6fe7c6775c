import { type RawBuilder, type SqlBool, sql } from 'kysely';
import { AppError } from '../core/errors.ts';
import type { Db } from '../store/database.ts';
import type { SourceServerTable } from '../store/schema-smc.ts';
import { type AgentSettings, offlineAfterMs } from './agent-settings.ts';
import { activeJobStates } from './replication-job-states.ts';

/**
 * A source server's State is derived from three facts, first match wins: DeleteSourceServer
 * accepted it (Deleting); its agent is silent for more than the missed heartbeats (Unavailable,
 * ErrorCode SourceServer.Offline); a job holds it (InUse); else Available. Deriving instead of
 * storing means no sweeper has to notice silence, and the state is right on every read.
 */
export const sourceServerStates = ['Available', 'InUse', 'Unavailable', 'Deleting'] as const;
export type SourceServerState = (typeof sourceServerStates)[number];

export const offlineErrorCode = 'SourceServer.Offline';

export interface SourceStateFacts {
  readonly deleting: boolean;
  readonly lastSeenAtMs: number;
  readonly hasActiveJob: boolean;
}

/** The State of a source at `nowMs`, by the precedence above. */
export function sourceState(facts: SourceStateFacts, nowMs: number, settings: AgentSettings): SourceServerState {
  if (facts.deleting) return 'Deleting';
  if (nowMs - facts.lastSeenAtMs > offlineAfterMs(settings)) return 'Unavailable';
  return facts.hasActiveJob ? 'InUse' : 'Available';
}

const activeStateList = sql.join(activeJobStates.map((s) => sql.lit(s)));

/** SQL: the source row (table `source_servers`) has a job in an active state. */
export const hasActiveJobSql: RawBuilder<SqlBool> = sql<SqlBool>`exists (select 1 from replication_jobs aj where aj.source_id = source_servers.id and aj.state in (${activeStateList}))`;

/**
 * SQL: the source row is in `state`, with the same precedence as sourceState; `silentSince` (ms,
 * a value or a prepared query's placeholder) is when an agent last heard from is offline: now
 * minus offlineAfterMs.
 */
export function sourceStateSql(state: SourceServerState, silentSince: number | RawBuilder<number>): RawBuilder<SqlBool> {
  switch (state) {
    case 'Deleting':
      return sql<SqlBool>`source_servers.deleting = 1`;
    case 'Unavailable':
      return sql<SqlBool>`(source_servers.deleting = 0 and source_servers.last_seen_at < ${silentSince})`;
    case 'InUse':
      return sql<SqlBool>`(source_servers.deleting = 0 and source_servers.last_seen_at >= ${silentSince} and ${hasActiveJobSql})`;
    case 'Available':
      return sql<SqlBool>`(source_servers.deleting = 0 and source_servers.last_seen_at >= ${silentSince} and not ${hasActiveJobSql})`;
  }
}

/** A source row of the caller's account with its derived state; InvalidSourceId.NotFound otherwise. */
export async function requireSource(
  db: Db,
  accountId: string,
  sourceId: string,
  nowMs: number,
  settings: AgentSettings,
): Promise<{ row: SourceServerTable; state: SourceServerState }> {
  const row = await db
    .selectFrom('source_servers')
    .selectAll('source_servers')
    .select(hasActiveJobSql.as('has_active_job'))
    .where('id', '=', sourceId)
    .where('account_id', '=', accountId)
    .executeTakeFirst();
  if (row === undefined) throw new AppError('InvalidSourceIdNotFound', { sourceId });
  const { has_active_job, ...source } = row;
  const state = sourceState({ deleting: Number(source.deleting) === 1, lastSeenAtMs: Number(source.last_seen_at), hasActiveJob: Boolean(Number(has_active_job)) }, nowMs, settings);
  return { row: source, state };
}

/** Refuse unless the source is in one of `allowed`. */
export function requireSourceState(sourceId: string, state: SourceServerState, allowed: readonly SourceServerState[]): void {
  if (!allowed.includes(state)) throw new AppError('SourceServerStateInvalid', { state, allowed: allowed.join(', '), sourceId });
}
