/**
 * How often agents heartbeat and when a silent one counts as offline. Read from the environment
 * (FERRY_AGENT_HEARTBEAT_SECONDS, default 10) so one setting reaches every node; tests shorten it.
 */
export interface AgentSettings {
  /** Seconds between an agent's heartbeats; sent to the agent and reported as HeartbeatRate. */
  readonly heartbeatSeconds: number;
  /** Heartbeats an agent may miss before its source is Unavailable (SourceServer.Offline). */
  readonly missedHeartbeats: number;
  /** Longest long poll for commands, in ms. */
  readonly maxPollMs: number;
}

/** The settings from the environment, with their defaults. */
export function agentSettings(env: NodeJS.ProcessEnv = process.env): AgentSettings {
  const heartbeat = Number(env['FERRY_AGENT_HEARTBEAT_SECONDS']);
  return {
    heartbeatSeconds: Number.isInteger(heartbeat) && heartbeat > 0 ? heartbeat : 10,
    missedHeartbeats: 3,
    maxPollMs: 20_000,
  };
}

/** Silence longer than this (ms) makes a source Unavailable. */
export function offlineAfterMs(settings: AgentSettings): number {
  return settings.heartbeatSeconds * settings.missedHeartbeats * 1000;
}
