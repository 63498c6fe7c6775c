import { mkdirSync, readFileSync, renameSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';

/** What an agent keeps in --state-dir: its source and the key its registration issued. */
export interface AgentState {
  readonly sourceId: string;
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
}

const fileName = 'agent.json';

/** The saved identity, or undefined on a first start. */
export function loadAgentState(stateDir: string): AgentState | undefined {
  let text: string;
  try {
    text = readFileSync(join(stateDir, fileName), 'utf8');
  } catch {
    return undefined;
  }
  const value = JSON.parse(text) as Partial<AgentState>;
  if (typeof value.sourceId !== 'string' || typeof value.accessKeyId !== 'string' || typeof value.accessKeySecret !== 'string') {
    throw new Error(`${join(stateDir, fileName)} is not an agent state file; remove it to register anew`);
  }
  return { sourceId: value.sourceId, accessKeyId: value.accessKeyId, accessKeySecret: value.accessKeySecret };
}

/** Save the identity (mode 0600: it holds a secret), atomically so a crash leaves the old file or the new. */
export function saveAgentState(stateDir: string, state: AgentState): void {
  mkdirSync(stateDir, { recursive: true, mode: 0o700 });
  const path = join(stateDir, fileName);
  writeFileSync(`${path}.tmp`, `${JSON.stringify(state)}\n`, { mode: 0o600 });
  renameSync(`${path}.tmp`, path);
}
