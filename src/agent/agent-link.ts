import type { Duplex } from 'node:stream';
import type {
  CommandAnswer,
  CommandsResponse,
  HeartbeatRequest,
  HeartbeatResponse,
  ProgressRequest,
  RegisterRequest,
  RegisterResponse,
  ResultRequest,
  StreamRequest,
  TreePartRequest,
} from '../core/agent-protocol.ts';

/**
 * The agent's way to the server (docs/agent-protocol.md), a port: the CLI wires it to HTTP with
 * ACS3 signing, and opens the data plane's streams by HTTP upgrade.
 */
export interface AgentApi {
  /** Register: with an activation code (unsigned) or the configured account key (signed). */
  register(request: RegisterRequest): Promise<RegisterResponse>;
  /** The calls an agent makes with the key its registration issued. */
  session(credentials: { readonly accessKeyId: string; readonly accessKeySecret: string }): AgentSession;
}

export interface AgentSession {
  heartbeat(request: HeartbeatRequest): Promise<HeartbeatResponse>;
  /** Long poll for open commands not in `exclude`, up to `waitMs`. */
  commands(waitMs: number, exclude: readonly string[]): Promise<CommandsResponse>;
  progress(commandId: string, request: ProgressRequest): Promise<CommandAnswer>;
  /** A data-plane stream for one disk of a replicate command (a ticket, then an upgraded connection). */
  openStream(commandId: string, request: StreamRequest, signal: AbortSignal): Promise<Duplex>;
  result(commandId: string, request: ResultRequest): Promise<CommandAnswer>;
  /** A piece of a fileTree command's tar stream. */
  treePart(commandId: string, request: TreePartRequest): Promise<CommandAnswer>;
}

/** A refusal from the server; `final` when retrying cannot help (the source was deleted, the key disabled). */
export class AgentApiError extends Error {
  constructor(
    readonly status: number,
    readonly code: string,
    message: string,
  ) {
    super(message);
    this.name = 'AgentApiError';
  }

  get final(): boolean {
    return this.status === 401 || this.status === 403 || (this.status === 404 && this.code.startsWith('InvalidAccessKeyId'));
  }
}
