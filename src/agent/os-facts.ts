import { readFileSync } from 'node:fs';
import { arch, cpus, hostname, networkInterfaces, release, totalmem } from 'node:os';
import { join } from 'node:path';
import type { SourceFacts } from '../core/agent-protocol.ts';

/** What the agent tells about the machine, besides its disks and its own version. */
export type OsFacts = Omit<SourceFacts, 'agentVersion' | 'disks'>;

function readText(path: string): string | undefined {
  try {
    return readFileSync(path, 'utf8');
  } catch {
    return undefined;
  }
}

/** The OS name from os-release (`PRETTY_NAME`, else `NAME VERSION`) under `root`. */
export function osName(osRelease: string): string {
  const fields = new Map(
    osRelease
      .split('\n')
      .map((line) => /^([A-Z_]+)=(.*)$/.exec(line.trim()))
      .filter((m): m is RegExpExecArray => m !== null)
      .map((m) => [m[1] ?? '', (m[2] ?? '').replace(/^"(.*)"$/, '$1')]),
  );
  return fields.get('PRETTY_NAME') ?? [fields.get('NAME'), fields.get('VERSION')].filter(Boolean).join(' ');
}

const architectures: Record<string, string> = { x64: 'x86_64', arm64: 'aarch64', ia32: 'i386' };

/**
 * Facts of the system under `root` (the source's root filesystem, default `/`): its OS name and
 * host name from there, CPU, memory, kernel and addresses from the machine the agent runs on.
 */
export function readOsFacts(root = '/'): OsFacts {
  const release_ = readText(join(root, 'etc/os-release')) ?? readText(join(root, 'usr/lib/os-release')) ?? '';
  return {
    hostname: readText(join(root, 'etc/hostname'))?.trim() || hostname(),
    platform: osName(release_) || 'Unknown',
    architecture: architectures[arch()] ?? arch(),
    kernelLevel: Number.parseInt(release(), 10) || 0,
    cores: cpus().length,
    memoryBytes: totalmem(),
    ipv4: Object.values(networkInterfaces())
      .flat()
      .filter((a) => a !== undefined && a.family === 'IPv4' && !a.internal)
      .map((a) => a?.address ?? ''),
  };
}
