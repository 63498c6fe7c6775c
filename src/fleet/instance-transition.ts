import type { Db } from '../store/database.ts';
import { type InstanceEvent, instanceMachine } from './instance-states.ts';

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
