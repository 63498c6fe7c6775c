/**
 * Response envelopes of the POP RPC front door (alibaba-rpc.md §5, §8). The clients disagree on
 * what an error is: pop-core reads only the body's `Code`, openapi-client/-core only the HTTP
 * status. So an error always has a 4xx/5xx status *and* a string `Code`, and a success never
 * carries a `Code` pop-core would take for an error.
 */
import { AppError } from '../../core/errors.ts';
import { jsonText } from './json-text.ts';

/** Body `Code` values pop-core accepts as success (its `codes` set). */
export const successCodes: ReadonlySet<unknown> = new Set<unknown>([200, '200', 'OK', 'Success', 'success']);

export type ResponseFields = Readonly<Record<string, unknown>>;

/** Optional RAM denial detail, surfaced by openapi clients as `err.accessDeniedDetail`. */
export interface AccessDeniedDetail {
  readonly AuthAction?: string;
  readonly AuthPrincipalType?: string;
  readonly AuthPrincipalOwnerId?: string;
  readonly AuthPrincipalDisplayName?: string;
  readonly NoPermissionType?: 'ImplicitDeny' | 'ExplicitDeny';
  readonly PolicyType?: string;
  readonly EncodedDiagnosticMessage?: string;
}

export interface ErrorBody {
  readonly RequestId: string;
  readonly HostId: string;
  readonly Code: string;
  readonly Message: string;
  readonly Recommend: string;
  readonly AccessDeniedDetail?: AccessDeniedDetail;
}

export interface ErrorContext {
  readonly requestId: string;
  /** The endpoint host the client called, e.g. `smc.aliyuncs.com` or `127.0.0.1:8080`. */
  readonly hostId: string;
  /** Product code for the troubleshooting link, e.g. `Smc`, `Ens`. */
  readonly product: string;
  readonly accessDeniedDetail?: AccessDeniedDetail;
}

export interface RenderedBody {
  readonly contentType: string;
  readonly payload: string;
}

/** Content types the clients expect; openapi-client parses an error as XML only on exactly this string. */
export const jsonContentType = 'application/json;charset=utf-8';
export const xmlContentType = 'text/xml;charset=utf-8';

/**
 * `{RequestId, ...fields}` for a 200 answer. A top-level `Code` that pop-core would throw on
 * (truthy and not a success token, e.g. `"0"` or `"Forbidden.RAM"`) is a bug in the handler:
 * it becomes InternalError instead of a success that one SDK reads as failure.
 */
export function successBody(requestId: string, fields: ResponseFields): Record<string, unknown> {
  const code = fields['Code'];
  if (Boolean(code) && !successCodes.has(code)) {
    throw new AppError('InternalError', { requestId }, { cause: new Error(`a success body carried Code ${JSON.stringify(code)}, which pop-core reads as an error`) });
  }
  const body: Record<string, unknown> = { RequestId: requestId };
  for (const [name, value] of Object.entries(fields)) {
    if (name !== 'RequestId') body[name] = value;
  }
  return body;
}

/** Status and body of an error answer: `{RequestId, HostId, Code, Message, Recommend}` with a 4xx/5xx status. */
export function errorResponse(error: AppError, ctx: ErrorContext): { readonly status: number; readonly body: ErrorBody } {
  // openapi clients only throw on 4xx/5xx; an override below 400 would turn the error into a success for them.
  const status = error.httpStatus >= 400 && error.httpStatus <= 599 ? error.httpStatus : 500;
  const body: ErrorBody = {
    RequestId: ctx.requestId,
    HostId: ctx.hostId,
    Code: error.alibabaCode,
    Message: error.message,
    Recommend: recommendUrl(error.alibabaCode, ctx.product, ctx.requestId),
    ...(ctx.accessDeniedDetail === undefined ? {} : { AccessDeniedDetail: ctx.accessDeniedDetail }),
  };
  return { status, body };
}

/** The troubleshooting link in the gateway's current form: `https://api.aliyun.com/troubleshoot?q=<Code>&product=<Product>&requestId=<RequestId>`. */
export function recommendUrl(code: string, product: string, requestId: string): string {
  const query = new URLSearchParams({ q: code, product, requestId });
  return `https://api.aliyun.com/troubleshoot?${query.toString()}`;
}

/** True when the request asked for XML (`Format=XML` in any case); absent or anything else means JSON. */
export function wantsXml(format: string | undefined): boolean {
  return format !== undefined && format.toLowerCase() === 'xml';
}

/** Serialise a body as JSON, or as XML under `rootName` (`<Action>Response` for success, `Error` for errors). */
export function renderBody(body: object, format: string | undefined, rootName: string): RenderedBody {
  if (!wantsXml(format)) return { contentType: jsonContentType, payload: jsonText(body) };
  return { contentType: xmlContentType, payload: renderXml(rootName, body) };
}

/**
 * XML in the gateway's style: one element per field; a list repeats its field's element
 * (`"ReplicationJob": [a, b]` → `<ReplicationJob>a</ReplicationJob><ReplicationJob>b</ReplicationJob>`);
 * `undefined` fields are left out, `null` is an empty element.
 */
export function renderXml(rootName: string, body: object): string {
  return `<?xml version="1.0" encoding="UTF-8"?>${element(rootName, body)}`;
}

function element(name: string, value: unknown): string {
  if (value === undefined) return '';
  if (Array.isArray(value)) return value.map((item: unknown) => element(name, item)).join('');
  const tag = xmlName(name);
  if (value === null) return `<${tag}/>`;
  if (typeof value === 'object') {
    const inner = Object.entries(value).map(([child, v]) => element(child, v)).join('');
    return `<${tag}>${inner}</${tag}>`;
  }
  if (typeof value === 'string' || typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint') {
    return `<${tag}>${escapeXml(String(value))}</${tag}>`;
  }
  return ''; // functions and symbols have no JSON form either
}

/** Field names come from our own handlers, but a stray character must not break the document. */
function xmlName(name: string): string {
  const cleaned = name.replace(/[^A-Za-z0-9_.-]/g, '_');
  return /^[A-Za-z_]/.test(cleaned) ? cleaned : `_${cleaned}`;
}

/** Escape markup and replace characters XML 1.0 cannot carry at all (controls, lone surrogates) with U+FFFD. */
export function escapeXml(text: string): string {
  return text
    .replace(/[\u0000-\u0008\u000B\u000C\u000E-\u001F\uFFFE\uFFFF]|[\uD800-\uDBFF](?![\uDC00-\uDFFF])|(?<![\uD800-\uDBFF])[\uDC00-\uDFFF]/g, '\uFFFD')
    .replace(/[&<>"']/g, (ch) => xmlEntities[ch] ?? ch);
}

const xmlEntities: Readonly<Record<string, string>> = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&apos;' };
