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
