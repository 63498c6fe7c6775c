import { readFileSync } from 'node:fs';
import type { Command } from 'commander';
import { parseFleetYaml } from '../fleet/fleet-spec.ts';
import type { FleetView } from '../fleet/show-fleet.ts';
import { callApi, credentialsFromEnv } from './api-client.ts';

function print(value: unknown, json: boolean, human: (v: never) => string): void {
  process.stdout.write(json ? `${JSON.stringify(value)}\n` : `${human(value as never)}\n`);
}

interface ApplyResult {
  counts: { created: number; updated: number; unchanged: number };
  created: Record<string, string[]>;
  updated: Record<string, string[]>;
}

/** `ferry fleet apply|show` and `ferry instance show`: clients of the native API. */
export function registerFleetCommands(program: Command): void {
  const fleet = program.command('fleet').description('fleet inventory (API client: FERRY_ENDPOINT, FERRY_ACCESS_KEY_ID, FERRY_ACCESS_KEY_SECRET)');
  fleet
    .command('apply')
    .description('create or update regions, zones, hosts, instance types, instances and disks from a fleet file; idempotent')
    .requiredOption('-f, --file <fleet.yaml>', 'fleet file; - reads standard input')
    .option('--json', 'print one JSON object', false)
    .action(async (opts: { file: string; json: boolean }) => {
      const spec = parseFleetYaml(readFileSync(opts.file === '-' ? 0 : opts.file, 'utf8'));
      const result = await callApi<ApplyResult>(credentialsFromEnv(), 'POST', '/api/v1/fleet/apply', spec);
      print(result, opts.json, (r: ApplyResult) => {
        const lines = [`created ${r.counts.created}, updated ${r.counts.updated}, unchanged ${r.counts.unchanged}`];
        for (const [verb, byKind] of [['created', r.created], ['updated', r.updated]] as const) {
          for (const [kind, ids] of Object.entries(byKind)) if (ids.length > 0) lines.push(`  ${verb} ${kind}: ${ids.join(', ')}`);
        }
        return lines.join('\n');
      });
    });
  fleet
    .command('show')
    .description('the fleet with capacity per NUMA node')
    .option('--json', 'print one JSON object', false)
    .action(async (opts: { json: boolean }) => {
      const view = await callApi<FleetView>(credentialsFromEnv(), 'GET', '/api/v1/fleet');
      print(view, opts.json, (v: FleetView) =>
        v.regions
          .flatMap((r) => r.zones.flatMap((z) => z.hosts.map((h) => `${r.id}/${z.id}\t${h.id}\t${h.state}\t${h.instanceIds.length} instances`)))
          .join('\n'),
      );
    });
  program
    .command('instance')
    .description('instances (API client)')
    .command('show <instanceId>')
    .description('host, zone, dedicated host, status, type and disks (with backing files) of an instance')
    .option('--json', 'print one JSON object', false)
    .action(async (instanceId: string, opts: { json: boolean }) => {
      const view = await callApi<Record<string, unknown>>(credentialsFromEnv(), 'GET', `/api/v1/instances/${encodeURIComponent(instanceId)}`);
      print(view, opts.json, (v: Record<string, unknown>) => Object.entries(v).map(([k, val]) => `${k}: ${typeof val === 'string' ? val : JSON.stringify(val)}`).join('\n'));
    });
}
