/**
 * The rules for answering a system event (EventMigrateInstance, EventRedeployInstance,
 * EventRebootInstance and their Batch forms; ens-api.md §4): which values are accepted, and the
 * InvalidParameter.<Field> error that names the field when one is not.
 */
import { randomBytes, scryptSync } from 'node:crypto';
import { AppError } from '../core/errors.ts';
import { type DataPolicy, type OpsType, dataPolicies, opsTypes } from './events-model.ts';

/** The fields an ENS event request can be wrong in; each has its `EnsInvalid<Field>` catalogue code. */
export type EventField = 'EventId' | 'ResourceId' | 'OpsType' | 'PlanTime' | 'PlanUtcTime' | 'DataPolicy' | 'Password' | 'EventTypes' | 'EventStatus' | 'EventLevels' | 'ResourceIds' | 'PageNumber' | 'PageSize';

/** `InvalidParameter.<field>` (HTTP 400), as ENS documents its Event* errors. */
export function eventParamError(field: EventField, reason: string): AppError {
  return new AppError(`EnsInvalid${field}`, { reason });
}

/** A handling request as the wire gives it: every value still unchecked text or number. */
export interface EventAnswerInput {
  readonly eventId?: unknown;
  readonly resourceId?: unknown;
  readonly opsType?: unknown;
  /** Epoch milliseconds, as a number or digits. */
  readonly planTime?: unknown;
  /** ISO 8601 UTC, e.g. `2026-03-20T06:30:32Z`. */
  readonly planUtcTime?: unknown;
  /** Migrate only. */
  readonly dataPolicy?: unknown;
  /** Migrate only. */
  readonly password?: unknown;
}

/** A checked answer. `planTimeMs` is set exactly when `opsType` is scheduled. */
export interface EventAnswer {
  readonly eventId: string;
  readonly resourceId: string;
  readonly opsType: OpsType;
  readonly planTimeMs: number | undefined;
  readonly dataPolicy: DataPolicy;
  /** The password the instance gets, when the caller chose one; else the system generates one nobody sees. */
  readonly password: string | undefined;
}

const idPattern = /^[A-Za-z0-9][A-Za-z0-9_.:-]{0,63}$/;

function requiredId(field: EventField, value: unknown): string {
  if (value === undefined || value === null || value === '') throw new AppError('MissingParameter', { name: field });
  if (typeof value !== 'string' || !idPattern.test(value)) throw eventParamError(field, 'must be an id such as e-… or i-… (letters, digits, - _ . :)');
  return value;
}

function oneOf<T extends string>(field: EventField, value: unknown, allowed: readonly T[], fallback: T | undefined): T {
  if (value === undefined || value === null || value === '') {
    if (fallback !== undefined) return fallback;
    throw new AppError('MissingParameter', { name: field });
  }
  if (typeof value === 'string' && (allowed as readonly string[]).includes(value)) return value as T;
  throw eventParamError(field, `must be one of ${allowed.join(', ')}`);
}

const utcPattern = /^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}(?::\d{2}(?:\.\d{1,3})?)?Z$/;

function planTimeFrom(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const ms = typeof value === 'number' ? value : typeof value === 'string' && /^\d{1,16}$/.test(value) ? Number(value) : Number.NaN;
  if (!Number.isSafeInteger(ms) || ms <= 0) throw eventParamError('PlanTime', 'must be a Unix time in milliseconds, e.g. 1742452232000');
  return ms;
}

/** Epoch ms of an ISO 8601 UTC time (`2026-03-20T06:30:32Z`, seconds and milliseconds optional); NaN when it is not one. */
export function utcTimeMs(text: string): number {
  return utcPattern.test(text) ? Date.parse(text) : Number.NaN;
}

function planUtcTimeFrom(value: unknown): number | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  const ms = typeof value === 'string' ? utcTimeMs(value) : Number.NaN;
  if (!Number.isFinite(ms)) throw eventParamError('PlanUtcTime', 'must be a UTC time such as 2026-03-20T06:30:32Z');
  return ms;
}

/** The SDK's password rule: 8–30 characters of letters, digits and these symbols, with an upper-case letter, a lower-case letter and a digit. */
const passwordSymbols = "()`~!@#$%^&*-_+=|{}[]:;'<>,.?/";

function checkPassword(value: unknown): string | undefined {
  if (value === undefined || value === null || value === '') return undefined;
  if (typeof value !== 'string' || value.length < 8 || value.length > 30) throw eventParamError('Password', 'must be 8 to 30 characters long');
  for (const ch of value) {
    if (!/[A-Za-z0-9]/.test(ch) && !passwordSymbols.includes(ch)) throw eventParamError('Password', `may hold only letters, digits and ${passwordSymbols}`);
  }
  if (!/[A-Z]/.test(value) || !/[a-z]/.test(value) || !/\d/.test(value)) {
    throw eventParamError('Password', 'must contain an upper-case letter, a lower-case letter and a digit');
  }
  return value;
}

/**
 * Check an answer's fields on their own (the event's own limits, such as its deadline, are
 * checked where the event is read). PlanTime and PlanUtcTime may both be given when they agree
 * to the second; either one is enough. An immediate run ignores them. A Password is refused on a
 * scheduled run: the cloud sets it only when the migration runs at once.
 */
export function checkEventAnswer(input: EventAnswerInput, migrate: boolean): EventAnswer {
  const eventId = requiredId('EventId', input.eventId);
  const resourceId = requiredId('ResourceId', input.resourceId);
  const opsType = oneOf('OpsType', input.opsType, opsTypes, undefined);
  const dataPolicy = migrate ? oneOf('DataPolicy', input.dataPolicy, dataPolicies, 'abandon') : 'abandon';
  if (!migrate && input.dataPolicy !== undefined && input.dataPolicy !== '') throw eventParamError('DataPolicy', 'applies only to EventMigrateInstance');
  const password = migrate ? checkPassword(input.password) : undefined;
  const fromMs = planTimeFrom(input.planTime);
  const fromUtc = planUtcTimeFrom(input.planUtcTime);
  if (opsType === 'immediate') return { eventId, resourceId, opsType, planTimeMs: undefined, dataPolicy, password };
  if (password !== undefined) throw eventParamError('Password', 'is not supported for scheduled execution; omit it, or run the migration with OpsType immediate');
  if (fromMs === undefined && fromUtc === undefined) throw eventParamError('PlanTime', 'is required when OpsType is scheduled (Unix time in milliseconds)');
  if (fromMs !== undefined && fromUtc !== undefined && Math.abs(fromMs - fromUtc) >= 1000) {
    throw eventParamError('PlanUtcTime', `says ${new Date(fromUtc).toISOString()} but PlanTime says ${new Date(fromMs).toISOString()}; give one, or both for the same time`);
  }
  return { eventId, resourceId, opsType, planTimeMs: fromMs ?? fromUtc, dataPolicy, password };
}

/** A password kept only as scrypt: `scrypt:<salt>:<hash>` in base64. */
export function hashPassword(password: string): string {
  const salt = randomBytes(16);
  return `scrypt:${salt.toString('base64')}:${scryptSync(password, salt, 32).toString('base64')}`;
}
