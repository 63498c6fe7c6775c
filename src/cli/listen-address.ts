import { AppError } from '../core/errors.ts';

/** Parse `HOST:PORT` (IPv6 as `[::1]:PORT`); port 0 asks the OS for a free one. */
export function parseListenAddress(text: string): { host: string; port: number } {
  const match = /^(?:\[([^\]]+)\]|([^:]+)):(\d{1,5})$/.exec(text);
  const port = Number(match?.[3]);
  const host = match?.[1] ?? match?.[2];
  if (match === null || host === undefined || !Number.isInteger(port) || port > 65_535) {
    throw new AppError('InvalidParameter', { name: '--listen', reason: `expected HOST:PORT, got "${text}"` });
  }
  return { host, port };
}
