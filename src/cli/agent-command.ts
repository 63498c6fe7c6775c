import { resolve } from 'node:path';
import { type Command, InvalidArgumentError, Option } from 'commander';
import { AgentApiError } from '../agent/agent-link.ts';
import { runAgent } from '../agent/agent.ts';
import { httpAgentApi } from './agent-http.ts';

function positiveInt(value: string): number {
  const n = Number(value);
  if (!Number.isInteger(n) || n <= 0) throw new InvalidArgumentError('expected a positive whole number');
  return n;
}

interface AgentCommandOptions {
  name: string;
  disk: string[];
  root?: string;
  stateDir: string;
  tokenId?: string;
  tokenCode?: string;
  pollMs?: number;
}

/**
 * `ferry agent`: the source-side agent. Registers the machine as an SMC source server (with an
 * activation code, else the FERRY_* key), prints {"sourceId"} as its first stdout line, then
 * heartbeats and carries out replication commands until SIGTERM/SIGINT. Logs go to stderr.
 */
export function registerAgentCommand(program: Command): void {
  program
    .command('agent')
    .description('run the source-side agent: register this machine as a source server and serve replication commands (FERRY_ENDPOINT)')
    .requiredOption('--name <name>', 'source server name (2-128 characters, starting with a letter)')
    .requiredOption('--disk <path>', 'a disk (file or block device) to migrate; repeat for data disks, the first is the system disk', (value: string, all: string[] = []) => [...all, value])
    .option('--root <dir>', 'the source root filesystem, for its OS name and host name', '/')
    .requiredOption('--state-dir <dir>', 'where the agent keeps its identity; a restart with the same dir reuses it')
    .option('--token-id <id>', 'SMC activation code id (at-...)')
    .option('--token-code <code>', 'SMC activation code')
    .addOption(new Option('--poll-ms <ms>', 'longest long poll for commands').argParser(positiveInt))
    .action(async (opts: AgentCommandOptions) => {
      if ((opts.tokenId === undefined) !== (opts.tokenCode === undefined)) throw new InvalidArgumentError('give --token-id and --token-code together');
      const env = process.env;
      const endpoint = (env['FERRY_ENDPOINT'] ?? 'http://127.0.0.1:8080').replace(/\/+$/, '');
      const keyId = env['FERRY_ACCESS_KEY_ID'];
      const keySecret = env['FERRY_ACCESS_KEY_SECRET'];
      const account = keyId !== undefined && keyId !== '' && keySecret !== undefined && keySecret !== '' ? { accessKeyId: keyId, accessKeySecret: keySecret } : undefined;
      const stop = new AbortController();
      process.once('SIGTERM', () => stop.abort());
      process.once('SIGINT', () => stop.abort());
      const log = (message: string): void => {
        process.stderr.write(`ferry agent: ${message}\n`);
      };
      try {
        await runAgent(
          {
            name: opts.name,
            disks: opts.disk.map((d) => resolve(d)),
            root: opts.root,
            stateDir: resolve(opts.stateDir),
            accessToken: opts.tokenId === undefined || opts.tokenCode === undefined ? undefined : { id: opts.tokenId, code: opts.tokenCode },
            ...(opts.pollMs === undefined ? {} : { pollMs: opts.pollMs }),
          },
          httpAgentApi(endpoint, account),
          stop.signal,
          { registered: (sourceId) => process.stdout.write(`${JSON.stringify({ sourceId })}\n`), log },
        );
        // A long poll may still be in flight; a stopped agent does not wait for it.
        process.exit(0);
      } catch (err) {
        if (err instanceof AgentApiError) {
          log(`stopped: ${err.code}: ${err.message}`);
          process.exit(err.final ? 3 : 2);
        }
        throw err;
      }
    });
}
