/** What every benchmark prints and writes the same way: the machine, a table, the results file. */
import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { cpus, loadavg, totalmem } from 'node:os';
import { join } from 'node:path';

export function round(value: number, digits: number): number {
  const scale = 10 ** digits;
  return Math.round(value * scale) / scale;
}

/** The 1-minute load average now: other work on the machine skews wall-clock rates. */
export function loadAverage1m(): number {
  return round(loadavg()[0] ?? 0, 2);
}

/** The machine a run measured, with the load average before it (`loadBefore`) and now. */
export function machineInfo(loadBefore: number): Record<string, unknown> {
  return {
    cpus: cpus().length,
    cpuModel: cpus()[0]?.model ?? 'unknown',
    totalMemBytes: totalmem(),
    node: process.version,
    platform: process.platform,
    arch: process.arch,
    loadAverage1mBefore: loadBefore,
    loadAverage1mAfter: loadAverage1m(),
  };
}

/** Print rows under a header, each column right-aligned to its widest cell. */
export function printTable(header: readonly string[], rows: readonly (readonly string[])[]): void {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((row) => (row[i] ?? '').length)));
  const line = (cells: readonly string[]): string => cells.map((c, i) => c.padStart(widths[i] ?? 0)).join('  ');
  console.log(line(header));
  for (const row of rows) console.log(line(row));
}

/** Write `bench/results/<name>.json` atomically and say where. */
export function writeReport(name: string, report: unknown): void {
  const outDir = join(import.meta.dirname, '..', 'results');
  mkdirSync(outDir, { recursive: true });
  const outFile = join(outDir, `${name}.json`);
  writeFileSync(`${outFile}.tmp`, `${JSON.stringify(report, null, 2)}\n`);
  renameSync(`${outFile}.tmp`, outFile);
  console.log(`\nwrote ${outFile}`);
}

/** CPU time (user + system) a process has used so far, in ms, from /proc; NaN where /proc is missing. */
export function processCpuMs(pid: number | undefined): number {
  try {
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? [];
    // utime and stime are fields 14 and 15 of stat; after the command name, at indexes 11 and 12.
    return ((Number(fields[11]) + Number(fields[12])) * 1000) / clockTicksPerSecond;
  } catch {
    return Number.NaN;
  }
}

/** USER_HZ: 100 on every Linux this runs on. */
const clockTicksPerSecond = 100;

