import { type Command, InvalidArgumentError } from 'commander';
import type { EventView } from '../migration/events.ts';
import type { HostStateOutcome } from '../migration/events-host-state.ts';
import { callApi, credentialsFromEnv } from './api-client.ts';

function wholeMs(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0) throw new InvalidArgumentError('expected a whole number of milliseconds');
  return n;
}

function print<T>(value: T, json: boolean, human: (v: T) => string): void {
  process.stdout.write(`${json ? JSON.stringify(value) : human(value)}\n`);
}

function eventLine(e: EventView): string {
  return `${e.eventId}\t${e.eventType}\t${e.status}\t${e.resourceId}\tnot before ${new Date(e.notBeforeMs).toISOString()}`;
}

/** `ferry events inject` and `ferry host set-state`: clients of the native API. */
export function registerEventCommands(program: Command): void {
  const events = program.command('events').description('instance system events (API client: FERRY_ENDPOINT, FERRY_ACCESS_KEY_ID, FERRY_ACCESS_KEY_SECRET)');
  events
    .command('inject')
    .description('raise a system event on one of your instances, as the platform would; the system executes it at its deadline unless answered')
    .requiredOption('--instance <instanceId>', 'the instance')
    .requiredOption('--type <eventType>', 'Instance:SystemUpgrade.Migrate, Instance:SystemMaintenance.Redeploy, Instance:SystemFailure.Redeploy, Instance:SystemMaintenance.Reboot or Instance:SystemFailure.Reboot')
    .option('--deadline-ms <ms>', 'answer window in ms (default per type: 1 h for failures, 72 h otherwise)', wholeMs)
    .option('--json', 'print one JSON object', false)
    .action(async (opts: { instance: string; type: string; deadlineMs?: number; json: boolean }) => {
      const body = { instanceId: opts.instance, eventType: opts.type, ...(opts.deadlineMs === undefined ? {} : { deadlineMs: opts.deadlineMs }) };
      print(await callApi<EventView>(credentialsFromEnv(), 'POST', '/api/v1/events', body), opts.json, eventLine);
    });
  program
    .command('host')
    .description('hosts (API client)')
    .command('set-state <hostId> <state>')
    .description('set a host to available, maintenance, failed or offline; maintenance and failed raise an event on each of its instances, available cancels those not started')
    .option('--event-type <eventType>', 'the event raised (maintenance: Instance:SystemUpgrade.Migrate by default; failed: Instance:SystemFailure.Redeploy)')
    .option('--deadline-ms <ms>', 'answer window of the raised events in ms', wholeMs)
    .option('--json', 'print one JSON object', false)
    .action(async (hostId: string, state: string, opts: { eventType?: string; deadlineMs?: number; json: boolean }) => {
      const body = { state, ...(opts.eventType === undefined ? {} : { eventType: opts.eventType }), ...(opts.deadlineMs === undefined ? {} : { deadlineMs: opts.deadlineMs }) };
      const outcome = await callApi<HostStateOutcome>(credentialsFromEnv(), 'POST', `/api/v1/hosts/${encodeURIComponent(hostId)}/state`, body);
      print(outcome, opts.json, (o) =>
        [`${o.hostId}: ${o.previous} -> ${o.state}`, ...o.raised.map((e) => `raised ${eventLine(e)}`), ...o.canceled.map((e) => `canceled ${eventLine(e)}`)].join('\n'),
      );
    });
}
