/**
 * The one shape every wire decoder here answers with when a request's params are wrong,
 * so the front door turns each into the same Alibaba `Code` without knowing who failed.
 */
import { AppError } from '../../core/errors.ts';

/** A param problem named in wire form (`DataDisk.1.Size`), with a reason a caller can act on. */
export interface ParamFailure {
  readonly ok: false;
  readonly code: 'MissingParameter' | 'InvalidParameter';
  /** The param as the client spelled it on the wire; `*` when the request as a whole is at fault. */
  readonly field: string;
  readonly reason: string;
}

/** An InvalidParameter failure for `field`. */
export function invalidParam(field: string, reason: string): ParamFailure {
  return { ok: false, code: 'InvalidParameter', field, reason };
}

/** A MissingParameter failure for `field`. */
export function missingParam(field: string): ParamFailure {
  return { ok: false, code: 'MissingParameter', field, reason: 'is missing' };
}

/** The catalogue error a ParamFailure is answered with (HTTP 400, Code MissingParameter / InvalidParameter). */
export function paramFailureError(failure: ParamFailure): AppError {
  return new AppError(failure.code, { name: failure.field, reason: failure.reason });
}

/** Wire names are client input; keep them short inside messages so a hostile name cannot bloat a response. */
export function shortName(name: string, maxChars = 80): string {
  return name.length <= maxChars ? name : `${name.slice(0, maxChars)}…`;
}
