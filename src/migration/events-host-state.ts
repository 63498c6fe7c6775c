/**
 * A host's state change and the system events it raises, in one place for every front door
 * (native API, CLI `ferry host set-state`): Maintenance or Failed raises an event on each of the
 * host's instances; Available again cancels those not yet started.
 */
import { AppError } from '../core/errors.ts';
import { type HostState, type HostStateChange, hostStates, setHostState } from '../fleet/index.ts';
import { type EventType, isEventType } from './events-model.ts';
import { type EventPorts, type EventView, cancelHostEvents, eventWindowMs, raiseHostEvents } from './events.ts';
import { requireOperator } from './operators.ts';
import type { ServiceContext } from './service-context.ts';

/** The event types a state may raise; the first is the default. */
const eventTypesFor: Readonly<Record<HostState, readonly EventType[]>> = {
  Available: [],
  Offline: [],
  Maintenance: ['Instance:SystemUpgrade.Migrate', 'Instance:SystemMaintenance.Redeploy', 'Instance:SystemMaintenance.Reboot'],
  Failed: ['Instance:SystemFailure.Redeploy', 'Instance:SystemFailure.Reboot'],
};

export interface HostStateRequest {
  readonly hostId: string;
  /** available | maintenance | failed | offline, in any case. */
  readonly state: string;
  /** The event raised on each instance; default Instance:SystemUpgrade.Migrate (maintenance), Instance:SystemFailure.Redeploy (failed). */
  readonly eventType?: string | undefined;
  /** How long owners have to answer before the system executes the events; default per event type. */
  readonly deadlineMs?: number | undefined;
}

export interface HostStateOutcome extends HostStateChange {
  readonly raised: readonly EventView[];
  readonly canceled: readonly EventView[];
}

function hostStateOf(value: string): HostState {
  const state = hostStates.find((s) => s.toLowerCase() === value.toLowerCase());
  if (state === undefined) throw new AppError('InvalidParameter', { name: 'state', reason: `use one of ${hostStates.map((s) => s.toLowerCase()).join(', ')}` });
  return state;
}

function eventTypeFor(state: HostState, requested: string | undefined): EventType | undefined {
  const allowed = eventTypesFor[state];
  if (requested === undefined || requested === '') return allowed[0];
  if (!isEventType(requested) || !allowed.includes(requested)) {
    const reason = allowed.length === 0 ? `a host set to ${state} raises no events` : `a host set to ${state} raises one of ${allowed.join(', ')}`;
    throw new AppError('InvalidParameter', { name: 'eventType', reason });
  }
  return requested;
}

/**
 * The events that follow a host state change: Maintenance or Failed raise `eventType` on every
 * instance of the host that has no open event; Available cancels the host's events that have not
 * started. Idempotent, so a change whose events were interrupted is completed by repeating it.
 */
export async function onHostStateChanged(ports: EventPorts, change: HostStateChange, options: { eventType?: EventType | undefined; deadlineMs?: number | undefined } = {}): Promise<HostStateOutcome> {
  if (change.state === 'Available') return { ...change, raised: [], canceled: await cancelHostEvents(ports, change.hostId) };
  const eventType = options.eventType ?? eventTypesFor[change.state][0];
  if (eventType === undefined) return { ...change, raised: [], canceled: [] };
  const raised = await raiseHostEvents(ports, change.hostId, eventType, options.deadlineMs);
  return { ...change, raised, canceled: [] };
}

/** Operators only: set the host's state (fleet) and raise or cancel its instances' events. */
export async function changeHostState(ctx: ServiceContext, request: HostStateRequest): Promise<HostStateOutcome> {
  await requireOperator(ctx);
  const state = hostStateOf(request.state);
  const eventType = eventTypeFor(state, request.eventType);
  if (eventType !== undefined) eventWindowMs(eventType, request.deadlineMs);
  const change = await setHostState(ctx.database, request.hostId, state, { clock: ctx.clock });
  return onHostStateChanged(ctx, change, { eventType, deadlineMs: request.deadlineMs });
}
