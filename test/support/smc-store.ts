/**
 * SMC services over a real database without HTTP: an account, sources registered through the
 * registration service, a real Worker running the SMC handlers under a ManualClock, and the agent's
 * side of a run played by calling the agent-command services and a data-plane Sender over loopback
 * TCP into the server's DiskStreams, bytes landing in a real image store.
 */
import { randomBytes } from 'node:crypto';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after } from 'node:test';
import type { ReplicateCommand, SourceFacts } from '../../src/core/agent-protocol.ts';
import { ManualClock, sleep } from '../../src/core/clock.ts';
import { JobStore } from '../../src/engine/job-store.ts';
import { Worker } from '../../src/engine/worker.ts';
import { ensureAccount } from '../../src/identity/accounts.ts';
import { SecretBox } from '../../src/identity/secret-box.ts';
import { loopbackPair } from '../../src/dataplane/loopback-pair.ts';
import { Sender } from '../../src/dataplane/sender.ts';
import { pollCommands, reportProgress, reportResult } from '../../src/migration/agent-commands.ts';
import { DiskStreams } from '../../src/migration/disk-streams.ts';
import { agentSettings } from '../../src/migration/agent-settings.ts';
import { type ImageStore, fileImageStore } from '../../src/migration/image-store.ts';
import { replicationHandlers } from '../../src/migration/replication-handlers.ts';
import type { ServiceContext } from '../../src/migration/service-context.ts';
import { registerSourceServer, requireAgentSource } from '../../src/migration/source-registration.ts';
import type { Database } from '../../src/store/database.ts';
import { type DialectContext, tempDir } from './dialects.ts';
import { machineFacts } from './smc.ts';

const gib = 1024 ** 3;

export interface SmcStore {
  readonly database: Database;
  readonly clock: ManualClock;
  readonly jobs: JobStore;
  readonly images: ImageStore;
  readonly dataDir: string;
  /** A service context for `accountId` (default: the store's account). */
  ctx(accountId?: string): ServiceContext;
  readonly accountId: string;
  /** Register a source as an agent would; returns its id. */
  register(name: string, facts?: SourceFacts, accountId?: string): Promise<string>;
  /** Run every due engine job (and those they queue) until none is due; the clock does not move. */
  settle(): Promise<void>;
  /** The agent's side of a run: fetch the source's command and send `bytes` as disk 0, then report. */
  agentRun(sourceId: string, outcome: 'ok' | 'fail', bytes?: Buffer): Promise<ReplicateCommand | undefined>;
  /** The agent of the source says something (a heartbeat) now. */
  heartbeat(sourceId: string): Promise<void>;
}

/** Open a migrated database of the dialect with one account and a worker running the SMC handlers. */
export async function openSmcStore(dialect: DialectContext, startMs = Date.UTC(2026, 0, 1)): Promise<SmcStore> {
  const database = await dialect.open();
  const clock = new ManualClock(startMs);
  const jobs = new JobStore(database, clock);
  const dataDir = tempDir('ferry-smc-');
  const images = fileImageStore(dataDir);
  const streams = new DiskStreams({ database, clock, images });
  const secrets = new SecretBox(randomBytes(32));
  const settings = agentSettings({});
  const worker = new Worker(jobs, replicationHandlers({ database, clock, jobs, images, settings }), { clock, pollMs: 5, leaseMs: 60_000, concurrency: 4 });
  worker.start();
  after(() => worker.stop(1000));
  const account = await ensureAccount(database.db, clock, `a${randomBytes(4).toString('hex')}`);
  const ctx = (accountId = account.id): ServiceContext => ({ database, clock, jobs, accountId, requestId: 'test', dataDir: join(dataDir) });
  const sourceOf = async (sourceId: string) => {
    const row = await database.db.selectFrom('source_servers').selectAll().where('id', '=', sourceId).executeTakeFirst();
    return row === undefined ? undefined : requireAgentSource(database, row.account_id, row.agent_key_id);
  };
  return {
    database,
    clock,
    jobs,
    images,
    dataDir,
    accountId: account.id,
    ctx,
    register: async (name, facts = machineFacts([gib]), accountId = account.id) => (await registerSourceServer({ database, clock, secrets }, { accountId }, name, facts)).sourceId,
    settle: async () => {
      for (let quiet = 0; quiet < 2; ) {
        worker.poke();
        await sleep(5);
        const busy = await database.db
          .selectFrom('jobs')
          .select('id')
          .where((eb) => eb.or([eb('state', '=', 'running'), eb.and([eb('state', '=', 'queued'), eb('run_at', '<=', clock.nowMs())])]))
          .executeTakeFirst();
        quiet = busy === undefined ? quiet + 1 : 0;
      }
    },
    agentRun: async (sourceId, outcome, bytes = Buffer.alloc(4096, 7)) => {
      const source = await sourceOf(sourceId);
      if (source === undefined) return undefined;
      const [command] = await pollCommands(ctx(source.account_id), source, 0, [], new AbortController().signal);
      if (command === undefined) return undefined;
      const c = ctx(source.account_id);
      await reportProgress(c, source, command.commandId, 0);
      if (outcome === 'fail') {
        await reportResult(c, source, command.commandId, { ok: false, errorCode: 'SourceServer.DiskUnreadable', message: 'test' });
        return command;
      }
      const sourcePath = join(dataDir, `source-${command.commandId}.raw`);
      writeFileSync(sourcePath, bytes);
      const { ticket } = await streams.issueTicket(source, command.commandId, { diskIndex: 0, runTotalBytes: bytes.length, runBytesBefore: 0 });
      const grant = await streams.redeem(ticket);
      if (grant === undefined) throw new Error('a fresh ticket was refused');
      const { client, server } = await loopbackPair();
      const serving = streams.serve(grant, server);
      const sent = await new Sender({ sourcePath, chunkSizeBytes: command.chunkSizeBytes }).run(client);
      await serving;
      await reportResult(c, source, command.commandId, { ok: true, disks: [{ index: 0, sizeBytes: bytes.length, sha256: sent.proof }] });
      return command;
    },
    heartbeat: async (sourceId) => {
      await database.db.updateTable('source_servers').set({ last_seen_at: clock.nowMs() }).where('id', '=', sourceId).execute();
    },
  };
}
