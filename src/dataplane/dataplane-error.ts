/**
 * Failures of the data plane. They reach users through a job's status, not an HTTP response,
 * so they carry their own small code set; `retryable` tells the job engine whether running the
 * same transfer again (which resumes from the receiver's checkpoint) can succeed.
 */

export const dataPlaneErrorCodes = {
  /** The link closed or failed before the transfer finished; a new run resumes. */
  ConnectionLost: { retryable: true },
  /** The peer sent bytes that do not follow the protocol (bad frame, wrong order, unknown version). */
  ProtocolError: { retryable: false },
  /** A chunk's bytes did not hash to the digest the sender declared for it. */
  ChunkDigestMismatch: { retryable: true },
  /** The whole-image proofs of sender and receiver differ after every chunk was confirmed. */
  ProofMismatch: { retryable: false },
  /** The two sides disagree on disk size, chunk size or hash algorithm. */
  GeometryMismatch: { retryable: false },
  /** The source disk or image cannot be opened or read. */
  SourceUnreadable: { retryable: false },
  /** The run the transfer belongs to was stopped, ended or deleted; sending again cannot help. */
  Cancelled: { retryable: false },
  /** qemu-img is not installed on this machine. */
  QemuImgMissing: { retryable: false },
  /** qemu-img ran and reported a failure. */
  QemuImgFailed: { retryable: false },
} as const satisfies Record<string, { readonly retryable: boolean }>;

export type DataPlaneErrorCode = keyof typeof dataPlaneErrorCodes;

export class DataPlaneError extends Error {
  readonly code: DataPlaneErrorCode;
  readonly retryable: boolean;

  constructor(code: DataPlaneErrorCode, message: string, options: { readonly cause?: unknown } = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause });
    this.name = 'DataPlaneError';
    this.code = code;
    this.retryable = dataPlaneErrorCodes[code].retryable;
  }
}

export function isDataPlaneError(err: unknown, code?: DataPlaneErrorCode): err is DataPlaneError {
  return err instanceof DataPlaneError && (code === undefined || err.code === code);
}
