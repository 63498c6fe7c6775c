/**
 * Freshness of a signed request (alibaba-rpc.md §6): V1 `Timestamp` and V3 `x-acs-date` must be
 * `yyyy-MM-ddTHH:mm:ssZ` in UTC and within 15 minutes of the server's clock. Together with the
 * nonce cache (identity/) this bounds how long a captured request can be replayed.
 */

/** How far a request's time may be from the server's, in ms, either way. */
export const maxClockSkewMs = 15 * 60_000;

export type RequestTimeResult =
  | { readonly ok: true; readonly timeMs: number }
  | { readonly ok: false; readonly code: 'InvalidTimeStamp.Format' | 'InvalidTimeStamp.Expired'; readonly reason: string };

const timestampPattern = /^(\d{4})-(\d{2})-(\d{2})T(\d{2}):(\d{2}):(\d{2})Z$/;

const daysInMonth = [31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31] as const;

/** Epoch ms of a POP timestamp, or undefined unless it is exactly `yyyy-MM-ddTHH:mm:ssZ` and a real date. */
export function parsePopTimestamp(text: string): number | undefined {
  const match = timestampPattern.exec(text);
  if (match === null) return undefined;
  const [year, month, day, hour, minute, second] = match.slice(1).map(Number) as [number, number, number, number, number, number];
  // Date.UTC would roll 2024-02-30 over to March, 24:00 to the next day, and read years below 100 as 19xx.
  const leap = (year % 4 === 0 && year % 100 !== 0) || year % 400 === 0;
  const lastDay = month === 2 && leap ? 29 : (daysInMonth[month - 1] ?? 0);
  if (year < 100 || day < 1 || day > lastDay || hour > 23 || minute > 59 || second > 59) return undefined;
  return Date.UTC(year, month - 1, day, hour, minute, second);
}

/** Check a request time against `nowMs`: the format first, then the ±15-minute window. */
export function checkRequestTime(text: string, nowMs: number, skewMs: number = maxClockSkewMs): RequestTimeResult {
  const timeMs = parsePopTimestamp(text);
  if (timeMs === undefined) {
    return { ok: false, code: 'InvalidTimeStamp.Format', reason: 'must be UTC in the form yyyy-MM-ddTHH:mm:ssZ' };
  }
  if (Math.abs(nowMs - timeMs) > skewMs) {
    return { ok: false, code: 'InvalidTimeStamp.Expired', reason: `is more than ${skewMs / 60_000} minutes away from the server time; check the client's clock` };
  }
  return { ok: true, timeMs };
}
