import { AppError } from '../core/errors.ts';

/**
 * SMC's naming rule for Name params: 2–128 characters, starting with a letter (Chinese letters
 * included), not starting with `http://` or `https://`.
 */
export function checkName(field: string, value: string): void {
  if (value.length < 2 || value.length > 128) throw new AppError('InvalidParameter', { name: field, reason: 'must be 2 to 128 characters long' });
  if (!/^\p{L}/u.test(value)) throw new AppError('InvalidParameter', { name: field, reason: 'must start with a letter' });
  if (/^https?:\/\//i.test(value)) throw new AppError('InvalidParameter', { name: field, reason: 'must not start with http:// or https://' });
}

/** Descriptions: at most 256 characters, not starting with `http://` or `https://`. */
export function checkDescription(field: string, value: string): void {
  if (value.length > 256) throw new AppError('InvalidParameter', { name: field, reason: 'must be at most 256 characters long' });
  if (/^https?:\/\//i.test(value)) throw new AppError('InvalidParameter', { name: field, reason: 'must not start with http:// or https://' });
}

/** An integer carried as a string (SMC's Count, TimeToLiveInDays), within [min, max]. */
export function intFromString(field: string, value: string | undefined, fallback: number, min: number, max: number): number {
  if (value === undefined || value === '') return fallback;
  if (!/^\d{1,9}$/.test(value)) throw new AppError('InvalidParameter', { name: field, reason: 'must be a whole number' });
  const n = Number(value);
  if (n < min || n > max) throw new AppError('InvalidParameter', { name: field, reason: `must be from ${min} to ${max}` });
  return n;
}

/** ISO 8601 UTC as the APIs answer it: `2026-01-02T03:04:05Z`. */
export function isoUtc(ms: number): string {
  return new Date(ms).toISOString().replace(/\.\d{3}Z$/, 'Z');
}

/**
 * The stricter rule CreateReplicationJob states for Name, Description and ImageName: 2–128
 * characters of letters, digits, `:`, `_` and `-`, starting with a letter, not `http(s)://`.
 */
export function checkStrictName(field: string, value: string): void {
  checkName(field, value);
  if (!/^[\p{L}\p{N}:_-]+$/u.test(value)) throw new AppError('InvalidParameter', { name: field, reason: 'may contain only letters, digits, colons (:), underscores (_) and hyphens (-)' });
}

const isoUtcPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

/** Epoch ms of an ISO 8601 UTC time written exactly `YYYY-MM-DDThh:mm:ssZ`, as SMC's time params are. */
export function parseIsoUtc(field: string, text: string): number {
  const match = isoUtcPattern.exec(text);
  const ms = match === null ? NaN : Date.parse(text);
  // Date.parse rolls 2024-02-30 over to March; a time that does not round-trip was not a time.
  if (Number.isNaN(ms) || isoUtc(ms) !== text) throw new AppError('InvalidParameter', { name: field, reason: 'must be an ISO 8601 UTC time in the form YYYY-MM-DDThh:mm:ssZ' });
  return ms;
}

/** An optional id-like text: `pattern` when given, at most `maxLength` characters. */
export function checkFormat(field: string, value: string | undefined, pattern: RegExp, what: string): void {
  if (value === undefined || value === '') return;
  if (!pattern.test(value)) throw new AppError('InvalidParameter', { name: field, reason: `must be ${what}` });
}
