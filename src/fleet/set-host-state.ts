import { type Clock, systemClock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { Database } from '../store/database.ts';
import { type HostState, hostStates, isHostState } from './host-states.ts';
import { cachedPlacement } from './placement/placement.ts';

export interface HostStateChange {
  readonly hostId: string;
  readonly previous: HostState;
  readonly state: HostState;
}

/**
 * Set a host's state (Available | Maintenance | Failed | Offline). Only Available hosts take new
 * placements; instances already on the host stay where they are (moving them is a migration).
 */
export async function setHostState(database: Database, hostId: string, state: string, options: { clock?: Clock } = {}): Promise<HostStateChange> {
  if (!isHostState(state)) throw new AppError('InvalidParameter', { name: 'state', reason: `use one of ${hostStates.join(', ')}, not ${state}` });
  const nowMs = (options.clock ?? systemClock).nowMs();
  const previous = await database.db.transaction().execute(async (trx) => {
    const row = await trx.selectFrom('hosts').select('state').where('id', '=', hostId).executeTakeFirst();
    if (row === undefined) throw new AppError('NotFound', { resource: 'host', id: hostId });
    if (row.state !== state) await trx.updateTable('hosts').set({ state, updated_at: nowMs }).where('id', '=', hostId).execute();
    return row.state as HostState;
  });
  // This process's index learns at once; other processes' learn when the database refuses a claim.
  await cachedPlacement(database)?.then(
    (placement) => placement.index.setHostState(hostId, state),
    () => undefined,
  );
  return { hostId, previous, state };
}
