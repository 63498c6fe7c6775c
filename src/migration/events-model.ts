/**
 * ENS instance system events as data: the enums of ens-api.md §2, what each event type does and
 * which O&M action handles it, and the life of an event as a state table.
 */
import { table } from '../core/state-machine.ts';

/** Every EventType DescribeHistoryEvents accepts as a filter (ens-api.md §2), plus the reboot type the Reboot actions handle. */
export const eventTypes = [
  'Instance:SystemFailure.Redeploy',
  'Instance:SystemFailure.Reboot',
  'Instance:RegionNetworkDown',
  'Disk:Stalled',
  'EnsRegion:NetworkMigration',
  'IP:SafeRisk',
  'IP:SafeBan',
  'Instance:SystemUpgrade.Migrate',
  'Instance:SystemMaintenance.Redeploy',
  'Instance:SystemMaintenance.Reboot',
] as const;
export type EventType = (typeof eventTypes)[number];

export const eventStatuses = ['Inquiring', 'Scheduled', 'Executing', 'Executed', 'Failed', 'Canceled', 'Avoided'] as const;
export type EventStatus = (typeof eventStatuses)[number];

export const eventLevels = ['CRITICAL', 'WARN', 'INFO'] as const;
export type EventLevel = (typeof eventLevels)[number];

export const opsTypes = ['immediate', 'scheduled'] as const;
export type OpsType = (typeof opsTypes)[number];

/**
 * What a migration does with the instance's data disks (the system disk always moves, or the
 * instance could not boot on its new host):
 * - `abandon` (the API's default): data disks are not copied; each is recreated empty, same size, on the new host.
 * - `force_transfer`: every data disk is copied and verified; if one cannot be, the migration fails and rolls back.
 * - `try_transfer`: every data disk is copied when it can be; one that cannot is recreated empty and listed in the event's result.
 */
export const dataPolicies = ['abandon', 'force_transfer', 'try_transfer'] as const;
export type DataPolicy = (typeof dataPolicies)[number];

/** The O&M actions of ens-api.md §4; each handles the event types listed for it in `eventTypeInfo`. */
export const eventActions = ['migrate', 'redeploy', 'reboot'] as const;
export type EventAction = (typeof eventActions)[number];

/** The API names of the single-event actions, for messages. */
export const eventActionNames: Readonly<Record<EventAction, string>> = {
  migrate: 'EventMigrateInstance',
  redeploy: 'EventRedeployInstance',
  reboot: 'EventRebootInstance',
};

export interface EventTypeInfo {
  readonly action: EventAction;
  readonly level: EventLevel;
  /** How long the owner has to act before the system executes the event itself, by default. */
  readonly defaultWindowMs: number;
  readonly reason: string;
}

const hourMs = 60 * 60_000;

/**
 * The event types Ferry raises (on host state changes and `ferry events inject`). A migrate moves
 * the instance to another host with the DataPolicy chosen; a redeploy moves it with every disk
 * (force_transfer); a reboot stops and starts it where it is.
 */
export const eventTypeInfo: Readonly<Partial<Record<EventType, EventTypeInfo>>> = {
  'Instance:SystemUpgrade.Migrate': { action: 'migrate', level: 'WARN', defaultWindowMs: 72 * hourMs, reason: 'the host is going into maintenance for an upgrade' },
  'Instance:SystemMaintenance.Redeploy': { action: 'redeploy', level: 'WARN', defaultWindowMs: 72 * hourMs, reason: 'the host is going into maintenance' },
  'Instance:SystemFailure.Redeploy': { action: 'redeploy', level: 'CRITICAL', defaultWindowMs: 1 * hourMs, reason: 'the host failed' },
  'Instance:SystemMaintenance.Reboot': { action: 'reboot', level: 'WARN', defaultWindowMs: 72 * hourMs, reason: 'the host needs a reboot of its instances for maintenance' },
  'Instance:SystemFailure.Reboot': { action: 'reboot', level: 'CRITICAL', defaultWindowMs: 1 * hourMs, reason: 'the host hit a system error' },
};

/** Event types Ferry can raise. */
export const raisableEventTypes = eventTypes.filter((t) => eventTypeInfo[t] !== undefined);

export function isEventType(value: string): value is EventType {
  return (eventTypes as readonly string[]).includes(value);
}

export function isEventStatus(value: string): value is EventStatus {
  return (eventStatuses as readonly string[]).includes(value);
}

export function isEventLevel(value: string): value is EventLevel {
  return (eventLevels as readonly string[]).includes(value);
}

/** The event types an action accepts (ens-api.md §2, "Which event type each action accepts"). */
export function typesHandledBy(action: EventAction): EventType[] {
  return raisableEventTypes.filter((t) => eventTypeInfo[t]?.action === action);
}

export const eventTransitions = ['schedule', 'execute', 'expire', 'succeed', 'fail', 'cancel', 'avoid'] as const;
export type EventTransition = (typeof eventTransitions)[number];

/**
 * The life of a system event. `schedule` is the owner choosing a planned time (again, to move it);
 * `execute` is the owner's immediate run or the planned time arriving; `expire` is the deadline
 * (NotBefore) passing with no answer, when the system executes the event itself; `cancel` is the
 * operator setting the host back to Available; `avoid` is the instance having left the host (or
 * no longer existing) by the time the event would run.
 */
export const eventMachine = table(eventStatuses, eventTransitions, [
  ['Inquiring', 'schedule', 'Scheduled'],
  ['Inquiring', 'execute', 'Executing'],
  ['Inquiring', 'expire', 'Executing'],
  ['Inquiring', 'cancel', 'Canceled'],
  ['Inquiring', 'avoid', 'Avoided'],
  ['Scheduled', 'schedule', 'Scheduled'],
  ['Scheduled', 'execute', 'Executing'],
  ['Scheduled', 'cancel', 'Canceled'],
  ['Scheduled', 'avoid', 'Avoided'],
  ['Executing', 'succeed', 'Executed'],
  ['Executing', 'fail', 'Failed'],
  ['Executing', 'avoid', 'Avoided'],
]);

/** The status `transition` leads to: in this table each transition has one, whatever it leaves from. */
export function eventTarget(transition: EventTransition): EventStatus {
  const targets = new Set(eventMachine.transitions.filter((t) => t.event === transition).map((t) => t.to));
  const [to] = targets;
  if (to === undefined || targets.size !== 1) throw new Error(`transition ${transition} has ${targets.size} targets`);
  return to;
}

/** Events that still await an answer or are running: an instance has at most one. */
export const openEventStatuses: readonly EventStatus[] = ['Inquiring', 'Scheduled', 'Executing'];

export const finalEventStatuses: readonly EventStatus[] = eventStatuses.filter((s) => eventTransitions.every((t) => !eventMachine.can(s, t)));
