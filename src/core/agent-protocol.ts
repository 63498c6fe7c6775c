/**
 * The agent-server contract (docs/agent-protocol.md): the JSON bodies an agent and the native API
 * `/api/v1/agent/...` exchange. Plain types here, because both sides need them and the agent may
 * import only core and dataplane; the server's route schemas are checked against these types.
 */

/** A partition as the agent found it in the disk's partition table (or the whole disk, table `none`). */
export interface PartitionFacts {
  /** 0-based position; with the disk index it forms the SMC device id `<disk>_<part>`. */
  readonly index: number;
  readonly offsetBytes: number;
  readonly sizeBytes: number;
  /** SMC part type: `Boot` for an active MBR entry or an EFI system partition, else `Normal`. */
  readonly type: 'Normal' | 'System' | 'Boot';
  readonly path: string;
}

export interface DiskFacts {
  /** 0 is the system disk, 1.. the data disks, in the order of the agent's --disk options. */
  readonly index: number;
  readonly path: string;
  readonly sizeBytes: number;
  readonly partitionTable: 'mbr' | 'gpt' | 'none';
  readonly parts: readonly PartitionFacts[];
}

/** What an agent reports about its machine at registration and on its first heartbeat after a start. */
export interface SourceFacts {
  readonly agentVersion: string;
  readonly hostname: string;
  /** OS name, e.g. `CentOS Linux 7 (Core)`, from os-release under --root. */
  readonly platform: string;
  /** e.g. `x86_64`, `aarch64`. */
  readonly architecture: string;
  /** The kernel's major version. */
  readonly kernelLevel: number;
  readonly cores: number;
  readonly memoryBytes: number;
  readonly ipv4: readonly string[];
  readonly disks: readonly DiskFacts[];
}

/** POST /api/v1/agent/activate (activation code, unsigned) and POST /api/v1/agent/register (signed). */
export interface RegisterRequest {
  readonly name: string;
  readonly facts: SourceFacts;
  readonly accessTokenId?: string;
  readonly accessTokenCode?: string;
}

/** The agent's own credential: it signs every later request with it, as the CLI does. */
export interface RegisterResponse {
  readonly sourceId: string;
  readonly accessKeyId: string;
  readonly accessKeySecret: string;
  readonly heartbeatSeconds: number;
}

/** POST /api/v1/agent/heartbeat. */
export interface HeartbeatRequest {
  readonly facts?: SourceFacts;
}

export interface HeartbeatResponse {
  readonly sourceId: string;
  readonly heartbeatSeconds: number;
}

/** One replication run: send these disks into the image the run builds. */
export interface ReplicateCommand {
  readonly commandId: string;
  readonly kind: 'replicate';
  readonly jobId: string;
  readonly runId: string;
  readonly disks: readonly { readonly index: number }[];
  readonly chunkSizeBytes: number;
  /** 0 means unlimited (ReplicationParameters bandwidth_limit, Mbit/s). */
  readonly bandwidthLimitMbps: number;
  /** 0 sends raw; 1-10 compress (compress_level). */
  readonly compressLevel: number;
  /** Whether the server verifies each chunk's xxh64 and each disk's proof (checksum). */
  readonly checksum: boolean;
  /**
   * What to send: the disks (absent, the default), or the file tree under --root as a tar stream
   * (ContainerImage), in TreePartRequests; its result then names the stream as disk 0.
   */
  readonly target?: 'disks' | 'fileTree';
}

/** GET /api/v1/agent/commands?waitMs=&exclude=: open commands, after at most waitMs of long poll. */
export interface CommandsResponse {
  readonly commands: readonly ReplicateCommand[];
}

/** POST /api/v1/agent/commands/:commandId/progress. */
export interface ProgressRequest {
  /** 0-100 over all disks of the command. */
  readonly percent: number;
}

/** Every answer to a running command says whether it was cancelled (Stop, Delete, expiry). */
export interface CommandAnswer {
  readonly cancelled: boolean;
}

/**
 * POST /api/v1/agent/commands/:commandId/streams: ask to send one disk of a replicate command.
 * The answer's one-time ticket opens the data-plane stream: `GET <agentStreamPath>?ticket=...`
 * with `Connection: Upgrade` and `Upgrade: <agentStreamProtocol>`; after `101 Switching Protocols`
 * the socket carries the data plane's frames (src/dataplane/protocol.ts), the agent sending.
 */
export interface StreamRequest {
  readonly diskIndex: number;
  /** Apparent bytes of all the command's disks, and of those before this one (for the run's progress). */
  readonly runTotalBytes: number;
  readonly runBytesBefore: number;
}

export interface StreamTicket {
  readonly ticket: string;
  /** Seconds the ticket stays valid. */
  readonly expiresInSeconds: number;
}

export const agentStreamPath = '/api/v1/agent/stream';
export const agentStreamProtocol = 'ferry-dataplane/1';

/** POST /api/v1/agent/commands/:commandId/tree: a piece of a fileTree command's tar stream, at its offset. */
export interface TreePartRequest {
  readonly offsetBytes: number;
  /** SHA-256 hex of the piece. */
  readonly sha256: string;
  readonly dataBase64: string;
  /** 0-100 over the tree's content bytes. */
  readonly percent: number;
}

/** POST /api/v1/agent/commands/:commandId/result. */
/**
 * `sha256` of a disk is its whole-image proof (SHA-256 over its chunks' xxh64 digests, see
 * src/dataplane/manifest.ts); of a fileTree command's stream, the SHA-256 of the tar bytes.
 */
export type ResultRequest =
  | { readonly ok: true; readonly disks: readonly { readonly index: number; readonly sizeBytes: number; readonly sha256: string }[] }
  | { readonly ok: false; readonly errorCode: string; readonly message: string };

export const agentApiPrefix = '/api/v1/agent';
