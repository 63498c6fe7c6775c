/**
 * 50 concurrent claims from 2 Ferry processes on one database never overcommit a NUMA node.
 * This file is also the child: run with FERRY_FLEET_CLAIM_CHILD=1 it makes claims and reports.
 */
import assert from 'node:assert/strict';
import { spawn } from 'node:child_process';
import { createInterface } from 'node:readline';
import { it } from 'node:test';
import { applyFleet } from '../src/fleet/apply-fleet.ts';
import { NoValidHostError, Placement } from '../src/fleet/placement/placement.ts';
import { SimComputeDriver } from '../src/fleet/sim-driver.ts';
import { openDatabase } from '../src/store/database.ts';
import { forEachDialect, tempDir } from './support/dialects.ts';

interface ChildReport {
  readonly claimed: number;
  readonly noValidHost: number;
  readonly conflicts: number;
}

const claimsPerChild = 25;

/** Child: wait for "go" on stdin, make the claims (5 at a time), print a report, exit. */
async function runChild(): Promise<void> {
  const url = process.env['FERRY_FLEET_DB_URL'] ?? '';
  const accountId = process.env['FERRY_FLEET_ACCOUNT_ID'] ?? '';
  const database = await openDatabase({ url, poolSize: 5, migrate: false });
  try {
    const placement = await Placement.load(database);
    const lines = createInterface({ input: process.stdin });
    process.stdout.write('ready\n');
    for await (const line of lines) if (line === 'go') break;
    lines.close();
    let next = 0;
    let claimed = 0;
    let noValidHost = 0;
    const worker = async (): Promise<void> => {
      while (next < claimsPerChild) {
        next += 1;
        try {
          await placement.claim({ accountId, instanceTypeId: 'small', zoneId: 'z1' });
          claimed += 1;
        } catch (err) {
          if (!(err instanceof NoValidHostError)) throw err;
          noValidHost += 1;
        }
      }
    };
    await Promise.all(Array.from({ length: 5 }, worker));
    const report: ChildReport = { claimed, noValidHost, conflicts: placement.stats.conflicts };
    process.stdout.write(`${JSON.stringify(report)}\n`);
  } finally {
    await database.close();
  }
}

interface Child {
  readonly ready: Promise<void>;
  readonly report: Promise<ChildReport>;
  go(): void;
}

function startChild(url: string, accountId: string): Child {
  const child = spawn(process.execPath, ['--import', 'tsx', import.meta.filename], {
    env: { ...process.env, FERRY_FLEET_CLAIM_CHILD: '1', FERRY_FLEET_DB_URL: url, FERRY_FLEET_ACCOUNT_ID: accountId },
    stdio: ['pipe', 'pipe', 'inherit'],
  });
  const lines = createInterface({ input: child.stdout });
  let onReady: () => void = () => undefined;
  const ready = new Promise<void>((resolve) => (onReady = resolve));
  const report = new Promise<ChildReport>((resolve, reject) => {
    let last: ChildReport | undefined;
    lines.on('line', (line) => {
      if (line === 'ready') onReady();
      else if (line.startsWith('{')) last = JSON.parse(line) as ChildReport;
    });
    child.on('exit', (code) => (code === 0 && last !== undefined ? resolve(last) : reject(new Error(`claim child exited with ${code}`))));
  });
  report.catch(() => onReady());
  return { ready, report, go: () => child.stdin.end('go\n') };
}

if (process.env['FERRY_FLEET_CLAIM_CHILD'] === '1') {
  await runChild();
} else {
  forEachDialect('fleet concurrent claims', (ctx) => {
    it('50 claims from 2 processes fill the hosts exactly and overcommit no NUMA node', async () => {
      const url = await ctx.newDatabaseUrl();
      const database = await openDatabase({ url });
      try {
        // 3 hosts x 2 NUMA nodes of 8 vCPUs: room for exactly 24 claims of 2 vCPUs.
        await applyFleet(database, new SimComputeDriver({ dataDir: tempDir() }), {
          regions: [
            {
              id: 'r1',
              zones: [
                {
                  id: 'z1',
                  hosts: ['h1', 'h2', 'h3'].map((id) => ({ id, vcpus: 16, memoryGiB: 64, numaNodes: 2 })),
                },
              ],
            },
          ],
          instanceTypes: [{ id: 'small', family: 'f', vcpus: 2, memoryGiB: 4 }],
        });
        const accountId = newAccount();
        await database.db.insertInto('accounts').values({ id: accountId, name: 'racer', project_id: accountId.padEnd(32, '0'), created_at: Date.now() }).execute();
        const children = [startChild(url, accountId), startChild(url, accountId)];
        await Promise.all(children.map((c) => c.ready));
        for (const child of children) child.go();
        const reports = await Promise.all(children.map((c) => c.report));

        const claimed = reports.reduce((s, r) => s + r.claimed, 0);
        assert.equal(claimed, 24, `claims made: ${JSON.stringify(reports)}`);
        assert.equal(reports.reduce((s, r) => s + r.noValidHost, 0), 26);
        const nodes = await database.db.selectFrom('host_numa_nodes').selectAll().execute();
        const claims = await database.db.selectFrom('placement_claims').selectAll().where('state', '=', 'held').execute();
        assert.equal(claims.length, 24);
        for (const node of nodes) {
          const held = claims.filter((c) => c.host_id === node.host_id && Number(c.node) === Number(node.node));
          assert.ok(Number(node.vcpus_used) <= Number(node.vcpus_total), `${node.host_id}/${node.node} overcommitted`);
          assert.equal(Number(node.vcpus_used), held.reduce((s, c) => s + Number(c.vcpus), 0));
          assert.equal(Number(node.vcpus_used), 8);
        }
      } finally {
        await database.close();
      }
    });
  });
}

function newAccount(): string {
  return String(1_000_000_000_000_000 + Math.floor(Math.random() * 1_000_000_000));
}
