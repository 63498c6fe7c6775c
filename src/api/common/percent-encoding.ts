/**
 * Percent-encoding as POP signatures need it (RFC 3986, alibaba-rpc.md §3) and decoding of
 * query strings and form bodies into one flat param map.
 *
 * Decisions:
 * - `+` is a space in query strings as well as in form bodies. That is how WHATWG URLSearchParams,
 *   Node's `querystring` and Fastify read queries, and no SDK leaves a literal `+` unescaped
 *   (all send `%2B`), so a request decodes the same wherever its params ride.
 * - A repeated name is refused (InvalidParameter), within one source and across query + body.
 *   No SDK repeats a name; letting one copy win would let the signed set and the handled set
 *   disagree about which copy counts.
 * - Empty segments (`a=1&&b=2`, a trailing `&`) are skipped; a segment without `=` is a name with
 *   an empty value, as every SDK's canonical string would sign it.
 */
import { invalidParam, shortName, type ParamFailure } from './param-failure.ts';

/** A decoded param map: names and values as the client meant them, before any re-encoding. */
export type ParamMap = Readonly<Record<string, string>>;

export type ParamsResult = { readonly ok: true; readonly params: ParamMap } | ParamFailure;

/** Most params one request may carry; far above any SMC/ENS call (50 ids × a few fields). */
export const maxWireParams = 1_000;

/**
 * RFC 3986 encoding of UTF-8 text: only `A-Z a-z 0-9 - _ . ~` stay literal, hex is uppercase, space is `%20`.
 * The text must be well-formed UTF-16, as every decoded param is (a lone surrogate never decodes).
 */
export function popEncode(text: string): string {
  // Most names and values (Action, ids, numbers) need no escape at all: skip building a copy.
  if (unreservedOnly.test(text)) return text;
  // encodeURIComponent already follows RFC 3986 except that it leaves these five unreserved-in-2396 marks.
  return encodeURIComponent(text).replace(/[!'()*]/g, (mark) => `%${mark.charCodeAt(0).toString(16).toUpperCase()}`);
}

const unreservedOnly = /^[A-Za-z0-9\-_.~]*$/;

/**
 * `enc(name)=enc(value)` pairs sorted by name and joined with `&`, the canonical query of both
 * signature versions. Names sort by UTF-16 code unit, as `Object.keys(...).sort()` in the JS SDKs
 * and Java's TreeMap do; for the ASCII names APIs use this is the byte order §3 asks for.
 */
export function canonicalQuery(params: ParamMap, omit?: string): string {
  return Object.keys(params)
    .filter((name) => name !== omit)
    .sort(byCodeUnit)
    .map((name) => `${popEncode(name)}=${popEncode(params[name] ?? '')}`)
    .join('&');
}

function byCodeUnit(a: string, b: string): number {
  if (a === b) return 0;
  return a < b ? -1 : 1;
}

/** Decode a query string or `application/x-www-form-urlencoded` body (no leading `?`) into a param map. */
export function decodeParams(text: string, maxParams: number = maxWireParams): ParamsResult {
  const params = emptyParamMap();
  let count = 0;
  for (const segment of text.split('&')) {
    if (segment === '') continue;
    count += 1;
    if (count > maxParams) return invalidParam('*', `the request has more than ${maxParams} params`);
    const eq = segment.indexOf('=');
    const rawName = eq === -1 ? segment : segment.slice(0, eq);
    const name = decodeComponent(rawName);
    if (name === undefined) return invalidParam(shortName(rawName), 'its name is not valid percent-encoded UTF-8');
    if (name === '') return invalidParam('*', 'a param has an empty name');
    const value = eq === -1 ? '' : decodeComponent(segment.slice(eq + 1));
    if (value === undefined) return invalidParam(shortName(name), 'is not valid percent-encoded UTF-8');
    if (Object.hasOwn(params, name)) return invalidParam(shortName(name), 'is given more than once');
    params[name] = value;
  }
  return { ok: true, params };
}

/** Merge the query's params with the form body's; a name present in both is refused. */
export function mergeParams(query: ParamMap, body: ParamMap, maxParams: number = maxWireParams): ParamsResult {
  // Most requests carry their params in one place only (a GET's query, pop-core's POST body):
  // that map is the answer, if it is a null-prototype map as decodeParams makes them.
  const bodyNames = Object.keys(body).length;
  const queryNames = Object.keys(query).length;
  if (bodyNames === 0 && queryNames <= maxParams && Object.getPrototypeOf(query) === null) return { ok: true, params: query };
  if (queryNames === 0 && bodyNames <= maxParams && Object.getPrototypeOf(body) === null) return { ok: true, params: body };
  const merged = emptyParamMap();
  Object.assign(merged, query);
  for (const [name, value] of Object.entries(body)) {
    if (Object.hasOwn(merged, name)) return invalidParam(shortName(name), 'is given in both the query string and the body');
    merged[name] = value;
  }
  if (Object.keys(merged).length > maxParams) return invalidParam('*', `the request has more than ${maxParams} params`);
  return { ok: true, params: merged };
}

/** A null-prototype map, so a param named `__proto__` or `constructor` is just a param. */
function emptyParamMap(): Record<string, string> {
  return Object.create(null) as Record<string, string>;
}

/** Percent-decode one name or value; undefined when the escapes are malformed or not UTF-8. */
function decodeComponent(raw: string): string | undefined {
  // Text without escapes or `+` decodes to itself.
  if (!raw.includes('%') && !raw.includes('+')) return raw;
  try {
    return decodeURIComponent(raw.replaceAll('+', ' '));
  } catch {
    return undefined;
  }
}
