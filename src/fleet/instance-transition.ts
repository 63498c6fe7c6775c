import { type RawBuilder, sql } from 'kysely';
import type { Db } from '../store/database.ts';
import { type InstanceEvent, type InstanceStatus, instanceMachine, instanceStatuses } from './instance-states.ts';

/**
 * Apply an instance event as one guarded UPDATE (status in the event's source states), in `db`
 * or a transaction. Returns false, changing nothing, when the instance is not in such a state.
 */
export async function transitionInstance(db: Db, instanceId: string, event: InstanceEvent, nowMs: number): Promise<boolean> {
  const to = instanceMachine.transitions.find((t) => t.event === event)?.to;
  if (to === undefined) return false;
  const result = await db
    .updateTable('instances')
    .set({ status: to, updated_at: nowMs })
    .where('id', '=', instanceId)
    .where('status', 'in', instanceMachine.sourcesOf(event))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/**
 * Apply `events` in order as one guarded UPDATE: from each status, every event that applies there
 * moves the instance on and one that does not is passed over (Stopping or Stopped, then `stopped`
 * and `migrate`: Migrating). Returns false, changing nothing, when none applies.
 */
export async function transitionInstanceThrough(db: Db, instanceId: string, events: readonly InstanceEvent[], nowMs: number): Promise<boolean> {
  const ends = endsThrough(events);
  if (ends.length === 0) return false;
  const result = await db
    .updateTable('instances')
    .set({ status: sql<string>`case ${sql.join(ends.map(([from, to]) => sql`when status = ${from} then ${to}`), sql` `)} end`, updated_at: nowMs })
    .where('id', '=', instanceId)
    .where('status', 'in', ends.map(([from]) => from))
    .executeTakeFirst();
  return Number(result.numUpdatedRows) === 1;
}

/** Every status that `events`, applied in order as in transitionInstanceThrough, moves on, with where it ends. */
function endsThrough(events: readonly InstanceEvent[]): Array<[InstanceStatus, InstanceStatus]> {
  const ends: Array<[InstanceStatus, InstanceStatus]> = [];
  for (const from of instanceStatuses) {
    let at: InstanceStatus = from;
    for (const event of events) at = instanceMachine.next(at, event) ?? at;
    if (at !== from) ends.push([from, at]);
  }
  return ends;
}

/**
 * The instance's status after `events`, as transitionInstanceThrough would apply them, for an
 * UPDATE that changes the row whatever its status: a status no event applies to stays as it is.
 */
export function statusThrough(events: readonly InstanceEvent[]): RawBuilder<string> {
  const ends = endsThrough(events);
  if (ends.length === 0) return sql<string>`status`;
  return sql<string>`case ${sql.join(ends.map(([from, to]) => sql`when status = ${from} then ${to}`), sql` `)} else status end`;
}
