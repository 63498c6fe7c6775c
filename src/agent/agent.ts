import type { SourceFacts } from '../core/agent-protocol.ts';
import { sleep } from '../core/clock.ts';
import { AgentApiError, type AgentApi, type AgentSession } from './agent-link.ts';
import { type AgentState, loadAgentState, saveAgentState } from './agent-state.ts';
import { readDiskFacts } from './disk-facts.ts';
import { readOsFacts } from './os-facts.ts';
import { runReplicateCommand } from './replicate.ts';
import { runTreeCommand } from './send-tree.ts';

export const agentVersion = '0.1.0';

export interface AgentOptions {
  readonly name: string;
  /** The source's disks; the first is the system disk. */
  readonly disks: readonly string[];
  /** The source's root filesystem, for its OS name and host name; default `/`. */
  readonly root?: string | undefined;
  readonly stateDir: string;
  /** An SMC activation code; without one, the API key the agent was started with registers it. */
  readonly accessToken?: { readonly id: string; readonly code: string } | undefined;
  /** Longest long poll for commands, in ms. */
  readonly pollMs?: number;
  /** Wait after a failed call before the next try, in ms. */
  readonly retryMs?: number;
}

export interface AgentHooks {
  /** The source id, once known: the CLI prints it as the first stdout line. */
  readonly registered: (sourceId: string) => void;
  readonly log: (message: string) => void;
}

/** Disks and OS facts, as registration and the first heartbeat report them. */
export async function collectFacts(options: AgentOptions): Promise<SourceFacts> {
  return { agentVersion, ...readOsFacts(options.root), disks: await readDiskFacts(options.disks) };
}

/** The saved identity, or a new registration saved before it is used, so a restart never registers twice. */
async function identity(options: AgentOptions, api: AgentApi, facts: SourceFacts): Promise<AgentState> {
  const saved = loadAgentState(options.stateDir);
  if (saved !== undefined) return saved;
  const token = options.accessToken === undefined ? {} : { accessTokenId: options.accessToken.id, accessTokenCode: options.accessToken.code };
  const registered = await api.register({ name: options.name, facts, ...token });
  const state = { sourceId: registered.sourceId, accessKeyId: registered.accessKeyId, accessKeySecret: registered.accessKeySecret };
  saveAgentState(options.stateDir, state);
  return state;
}

/**
 * Run the agent: register (or reuse --state-dir's identity), heartbeat, and carry out the commands
 * the long poll brings, one at a time, until `signal` aborts. Network trouble and server restarts
 * are retried; a refusal of its key (the source was deleted) ends the agent with that error.
 */
export async function runAgent(options: AgentOptions, api: AgentApi, signal: AbortSignal, hooks: AgentHooks): Promise<void> {
  const facts = await collectFacts(options);
  const state = await identity(options, api, facts);
  const session = api.session(state);
  const stop = new AbortController();
  const stopAll = (): void => stop.abort();
  signal.addEventListener('abort', stopAll, { once: true });
  let failure: AgentApiError | undefined;
  const retryMs = options.retryMs ?? 1000;

  /** Run `call` until it succeeds, retrying network trouble and 5xx; a final refusal stops the agent. Undefined when stopped or refused. */
  async function attempt<T>(what: string, call: () => Promise<T>): Promise<T | undefined> {
    while (!stop.signal.aborted) {
      try {
        return await call();
      } catch (err) {
        if (err instanceof AgentApiError && err.final) {
          failure = err;
          stop.abort();
          return undefined;
        }
        // Any other refusal would only repeat (a command deleted meanwhile, say): give up this call.
        if (err instanceof AgentApiError && err.status < 500) {
          hooks.log(`${what} refused: ${err.message}`);
          return undefined;
        }
        if (stop.signal.aborted) return undefined;
        hooks.log(`${what} failed, retrying: ${err instanceof Error ? err.message : String(err)}`);
        await sleep(retryMs, stop.signal).catch(() => undefined);
      }
    }
    return undefined;
  }

  const first = await attempt('heartbeat', () => session.heartbeat({ facts }));
  // Announced once the server has heard from this start, so whoever reads the id finds the source Available.
  if (first !== undefined) hooks.registered(state.sourceId);
  const heartbeatMs = (first?.heartbeatSeconds ?? 10) * 1000;
  const heartbeats = (async () => {
    while (!stop.signal.aborted) {
      await sleep(heartbeatMs, stop.signal).catch(() => undefined);
      if (!stop.signal.aborted) await attempt('heartbeat', () => session.heartbeat({}));
    }
  })();
  const commands = commandLoop(options, session, stop.signal, attempt, hooks);
  await Promise.all([heartbeats, commands]);
  signal.removeEventListener('abort', stopAll);
  if (failure !== undefined) throw failure;
}

async function commandLoop(
  options: AgentOptions,
  session: AgentSession,
  signal: AbortSignal,
  attempt: <T>(what: string, call: () => Promise<T>) => Promise<T | undefined>,
  hooks: AgentHooks,
): Promise<void> {
  const pollMs = options.pollMs ?? 10_000;
  while (!signal.aborted) {
    const answer = await attempt('polling for commands', () => session.commands(pollMs, []));
    for (const command of answer?.commands ?? []) {
      if (signal.aborted) return;
      if (command.target === 'fileTree') {
        hooks.log(`command ${command.commandId}: replicate the file tree under ${options.root ?? '/'} for job ${command.jobId}`);
        const outcome = await attempt(`command ${command.commandId}`, () => runTreeCommand(command, { root: options.root ?? '/', stateDir: options.stateDir }, session, signal));
        if (outcome !== undefined) hooks.log(`command ${command.commandId}: ${outcome}`);
        continue;
      }
      hooks.log(`command ${command.commandId}: replicate disks ${command.disks.map((d) => d.index).join(', ')} for job ${command.jobId}`);
      const outcome = await attempt(`command ${command.commandId}`, () => runReplicateCommand(command, options.disks, session, signal, { retryMs: options.retryMs ?? 1000, log: hooks.log }));
      if (outcome !== undefined) hooks.log(`command ${command.commandId}: ${outcome}`);
    }
  }
}
