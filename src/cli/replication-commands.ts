import { type Command, InvalidArgumentError, Option } from 'commander';
import { SingleBar } from 'cli-progress';
import { sleep } from '../core/clock.ts';
import type { ReplicationProgress } from '../migration/replication-progress.ts';
import { callApi, credentialsFromEnv } from './api-client.ts';
import { type ExportFormat, exportImage } from './image-export.ts';

const mib = 1024 * 1024;

function diskIndex(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n < 0 || n > 16) throw new InvalidArgumentError('expected a disk index from 0 to 16');
  return n;
}

function formatMiB(bytes: number): string {
  return (bytes / mib).toFixed(bytes < 10 * mib ? 1 : 0);
}

/** A job is done watching once no run is under way or about to start: states other than Ready and Running/*. */
function settled(progress: ReplicationProgress): boolean {
  return progress.state !== 'Ready' && !progress.state.startsWith('Running');
}

/**
 * `ferry jobs watch JOB_ID`: a progress bar of the job's current run (bytes done of total, rate,
 * ETA) until the job leaves Ready and Running; exit status 0 when it ends Finished or Waiting, else 1.
 */
async function watchJob(jobId: string, opts: { intervalMs: number; json: boolean }): Promise<void> {
  const creds = credentialsFromEnv();
  const bar = new SingleBar({
    format: '{bar} {percentage}% | {doneMiB}/{totalMiB} MiB | {rateMiB} MiB/s | ETA {etaText} | {state}',
    stream: process.stderr,
    hideCursor: true,
    noTTYOutput: !opts.json,
    notTTYSchedule: 2000,
  });
  let started = false;
  let progress: ReplicationProgress;
  for (;;) {
    progress = await callApi<ReplicationProgress>(creds, 'GET', `/api/v1/replication-jobs/${encodeURIComponent(jobId)}/progress`);
    const run = progress.runs.at(-1);
    const total = Math.max(1, run?.bytesTotal ?? 0);
    const payload = {
      doneMiB: formatMiB(run?.bytesDone ?? 0),
      totalMiB: formatMiB(run?.bytesTotal ?? 0),
      rateMiB: ((run?.rateBytesPerSec ?? 0) / mib).toFixed(1),
      etaText: run?.etaSeconds === null || run?.etaSeconds === undefined ? '-' : `${Math.ceil(run.etaSeconds)} s`,
      state: progress.state,
    };
    const done = settled(progress) && progress.state !== 'InError' && progress.state !== 'Stopped' ? total : Math.min(total, run?.bytesDone ?? 0);
    if (!opts.json) {
      if (!started) bar.start(total, done, payload);
      else bar.setTotal(total);
      bar.update(done, payload);
      started = true;
    }
    if (settled(progress)) break;
    await sleep(opts.intervalMs);
  }
  if (started) bar.stop();
  const ok = progress.state === 'Finished' || progress.state === 'Waiting';
  if (opts.json) process.stdout.write(`${JSON.stringify(progress)}\n`);
  else process.stdout.write(`${progress.jobId} ${progress.state}${progress.imageId === '' ? '' : ` image ${progress.imageId}`}${progress.errorCode === '' ? '' : ` ${progress.errorCode}`}\n`);
  if (!ok) process.exitCode = 1;
}

/** `ferry jobs watch` and `ferry image export`: clients of the native API. */
export function registerReplicationCommands(program: Command): void {
  const jobs = program.command('jobs').description('replication jobs (API client: FERRY_ENDPOINT, FERRY_ACCESS_KEY_ID, FERRY_ACCESS_KEY_SECRET)');
  jobs
    .command('watch <jobId>')
    .description('show a progress bar of a replication job\'s run (bytes, rate, ETA) until it stops running; exit 1 unless it ends Finished or Waiting')
    .addOption(new Option('--interval-ms <ms>', 'how often to ask the server').default(1000).argParser((v) => Math.max(100, Number(v) || 1000)))
    .option('--json', 'print no bar; at the end print the job\'s progress as one JSON object', false)
    .action(async (jobId: string, opts: { intervalMs: number; json: boolean }) => {
      await watchJob(jobId, opts);
    });

  const image = program.command('image').description('images built by replication jobs (API client: FERRY_ENDPOINT, FERRY_ACCESS_KEY_ID, FERRY_ACCESS_KEY_SECRET)');
  image
    .command('export <imageId>')
    .description('download an image\'s disk as a sparse raw file or a qcow2 image, checked chunk by chunk against its manifest and proof (qcow2: also qemu-img check and compare)')
    .addOption(new Option('--format <format>', 'raw or qcow2').choices(['raw', 'qcow2']).default('raw'))
    .requiredOption('-o, --output <file>', 'where to write the image')
    .addOption(new Option('--disk <index>', 'which disk: 0 the system disk, N data disk N').default(0).argParser(diskIndex))
    .option('--json', 'print one JSON object', false)
    .action(async (imageId: string, opts: { format: ExportFormat; output: string; disk: number; json: boolean }) => {
      const result = await exportImage(credentialsFromEnv(), imageId, { format: opts.format, out: opts.output, diskIndex: opts.disk });
      if (opts.json) process.stdout.write(`${JSON.stringify(result)}\n`);
      else process.stdout.write(`${result.path}: ${result.format}, ${result.sizeBytes} bytes, ${result.dataChunks} data chunks; checked: ${result.checks.join(', ')}\n`);
    });
}
