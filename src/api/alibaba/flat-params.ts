/**
 * Turns the flat param map of a POP RPC request into the nested value a TypeBox schema
 * describes, accepting every form the SDKs send (alibaba-rpc.md §7, smc-api.md §2, ens-api.md §3):
 *
 * | schema says | accepted on the wire |
 * |---|---|
 * | list | `Key.1`, `Key.2`, … (1-based, sorted numerically, gaps closed up and reported); one value holding a JSON array (`["i-1","i-2"]`); one comma-joined value (`a,b`, scalar items only; empty ⇒ `[]`) |
 * | object | dotted fields `Disks.System.Size`; one value holding a JSON object |
 * | number / integer / boolean | the text `1024`, `-1.5`, `1e3`, `true`/`false` (any case); an empty value means "not given" |
 * | string | the text as is, JSON-looking or not (ReplicationParameters stays text; see parseJsonParam) |
 *
 * Params the schema does not name are ignored: the protocol's own (Action, Signature…, see
 * protocolParamNames) silently, any other is listed in `ignored` so the caller may log it.
 * The decoded value is then validated with TypeBox; a failure names the param in wire form.
 * Nothing here throws on client input: every problem is a ParamFailure.
 */
import { Type, type Static, type TArray, type TObject, type TProperties, type TSchema } from 'typebox';
import { Compile, type Validator } from 'typebox/compile';
import { maxWireParams, type ParamMap } from '../common/percent-encoding.ts';
import { invalidParam, shortName, type ParamFailure } from '../common/param-failure.ts';
import { describeSchemaFailure, escapePointer, type WireName } from './schema-failure.ts';

/** Bounds on what one request may make the decoder do, so a hostile request costs little. */
export interface FlatLimits {
  /** Most params in one request. */
  readonly maxParams: number;
  /** Highest `Key.N` index, and most items in one JSON or comma-joined list. */
  readonly maxIndex: number;
  /** Most dot-separated segments in a param name, and deepest nesting of a JSON value. */
  readonly maxDepth: number;
  /** Most characters over all names and values together. */
  readonly maxTotalChars: number;
}

export const defaultFlatLimits: FlatLimits = { maxParams: maxWireParams, maxIndex: 1_000, maxDepth: 10, maxTotalChars: 1_048_576 };

/** Common params of the protocol itself (§2) and the fields every SMC request model carries; never business input. */
export const protocolParamNames: ReadonlySet<string> = new Set([
  'Action', 'Version', 'AccessKeyId', 'Signature', 'SignatureMethod', 'SignatureVersion', 'SignatureNonce', 'SignatureType',
  'Timestamp', 'Format', 'SecurityToken', 'BearerToken', 'RegionId', 'OwnerId', 'OwnerAccount', 'ResourceOwnerAccount', 'ResourceOwnerId',
]);

export type FlatParamsResult<T> =
  | {
      readonly ok: true;
      readonly value: T;
      /** Missing list indexes that were closed up, e.g. `JobId.2` or `DataDisk.3-5`. */
      readonly gaps: readonly string[];
      /** Params the schema does not name (protocol params excluded), e.g. `Foo`, `DataDisk.1.Bogus`. */
      readonly ignored: readonly string[];
    }
  | ParamFailure;

export type JsonParamResult = { readonly ok: true; readonly value: unknown } | ParamFailure;

/** Decode a flat param map into the value `schema` describes and validate it; never throws on client input. */
export function decodeFlatParams<S extends TObject>(schema: S, params: ParamMap, limits: FlatLimits = defaultFlatLimits): FlatParamsResult<Static<S>> {
  const tree = buildTree(params, limits);
  if (!tree.ok) return tree;
  const ctx: Context = { limits, gaps: [], ignored: [], names: new Map() };
  const step = decodeObject(schema, tree.root, '', '', ctx);
  if (!step.ok) return step;
  if (!validatorOf(schema).Check(step.value)) return describeSchemaFailure(schema, step.value, (pointer) => ctx.names.get(pointer));
  return { ok: true, value: step.value, gaps: ctx.gaps, ignored: ctx.ignored };
}

// Every request of an action checks the same schema: compiled once, it checks several times faster.
const validators = new WeakMap<TSchema, Validator>();

function validatorOf<S extends TObject>(schema: S): Validator<TProperties, S, Static<S>> {
  let validator = validators.get(schema);
  if (validator === undefined) {
    validator = Compile(schema);
    validators.set(schema, validator);
  }
  // The map holds each schema's own validator; its static type is lost in the map only.
  return validator as unknown as Validator<TProperties, S, Static<S>>;
}

/** Parse a param whose value is JSON text (ReplicationParameters, EventInfos); bad or too deeply nested JSON is InvalidParameter. */
export function parseJsonParam(field: string, text: string, maxDepth: number = defaultFlatLimits.maxDepth): JsonParamResult {
  // JSON.parse copes with deep nesting, but everything that walks the result afterwards recurses.
  if (jsonNestingDepth(text) > maxDepth) return invalidParam(field, `nests JSON deeper than ${maxDepth} levels`);
  try {
    return { ok: true, value: JSON.parse(text) as unknown };
  } catch {
    return invalidParam(field, 'is not valid JSON');
  }
}

/** One segment of a dotted param name; `value` is set when a param ends here. */
interface WireNode {
  value: string | undefined;
  readonly children: Map<string, WireNode>;
}

interface Context {
  readonly limits: FlatLimits;
  readonly gaps: string[];
  readonly ignored: string[];
  /** Wire names of list items and of values sent as one text, by JSON pointer into the decoded value. */
  readonly names: Map<string, WireName>;
}

/** `value` undefined means the param was not given. */
type Step = { readonly ok: true; readonly value: unknown } | ParamFailure;

const indexPattern = /^[1-9]\d{0,6}$/;
const numberPattern = /^-?\d+(?:\.\d+)?(?:[eE][+-]?\d+)?$/;

function buildTree(params: ParamMap, limits: FlatLimits): { readonly ok: true; readonly root: WireNode } | ParamFailure {
  const names = Object.keys(params);
  if (names.length > limits.maxParams) return invalidParam('*', `the request has ${names.length} params; at most ${limits.maxParams} are accepted`);
  const root = newNode();
  let totalChars = 0;
  for (const name of names) {
    const value = params[name] ?? '';
    totalChars += name.length + value.length;
    if (totalChars > limits.maxTotalChars) return invalidParam('*', `the params are longer than ${limits.maxTotalChars} characters in total`);
    const segments = name.split('.');
    if (segments.length > limits.maxDepth) return invalidParam(shortName(name), `nests ${segments.length} levels deep; at most ${limits.maxDepth} are accepted`);
    let node = root;
    for (const segment of segments) {
      let child = node.children.get(segment);
      if (child === undefined) {
        child = newNode();
        node.children.set(segment, child);
      }
      node = child;
    }
    node.value = value;
  }
  return { ok: true, root };
}

function newNode(): WireNode {
  return { value: undefined, children: new Map() };
}

function decodeValue(schema: TSchema, node: WireNode, name: string, pointer: string, ctx: Context): Step {
  if (Type.IsArray(schema)) return decodeList(schema, node, name, pointer, ctx);
  if (Type.IsObject(schema)) return decodeObject(schema, node, name, pointer, ctx);
  for (const child of node.children.keys()) ctx.ignored.push(shortName(joinName(name, child)));
  return { ok: true, value: node.value === undefined ? undefined : coerceText(schema, node.value) };
}

function decodeObject(schema: TObject, node: WireNode, name: string, pointer: string, ctx: Context): Step {
  if (node.value !== undefined) {
    if (node.children.size > 0) return givenTwice(name);
    return decodeObjectText(schema, node.value, name, pointer, ctx);
  }
  const out: Record<string, unknown> = {};
  for (const [prop, propSchema] of Object.entries(schema.properties)) {
    const child = node.children.get(prop);
    if (child === undefined) continue;
    const step = decodeValue(propSchema, child, joinName(name, prop), `${pointer}/${escapePointer(prop)}`, ctx);
    if (!step.ok) return step;
    if (step.value !== undefined) out[prop] = step.value;
  }
  for (const child of node.children.keys()) {
    if (Object.hasOwn(schema.properties, child) || (name === '' && protocolParamNames.has(child))) continue;
    ctx.ignored.push(shortName(joinName(name, child)));
  }
  return { ok: true, value: out };
}

function decodeList(schema: TArray, node: WireNode, name: string, pointer: string, ctx: Context): Step {
  if (node.value !== undefined) {
    if (node.children.size > 0) return givenTwice(name);
    return decodeListText(schema, node.value, name, pointer, ctx);
  }
  const indexed: [number, WireNode][] = [];
  for (const [segment, child] of node.children) {
    const itemName = shortName(joinName(name, segment));
    if (!indexPattern.test(segment)) return invalidParam(itemName, `is not a list item; number the items ${name}.1, ${name}.2, …`);
    const index = Number(segment);
    if (index > ctx.limits.maxIndex) return invalidParam(itemName, `has index ${index}; at most ${ctx.limits.maxIndex} items are accepted`);
    indexed.push([index, child]);
  }
  // Numeric, not textual, order: `.10` follows `.9`.
  indexed.sort((a, b) => a[0] - b[0]);
  const items: unknown[] = [];
  let expected = 1;
  for (const [index, child] of indexed) {
    if (index > expected) ctx.gaps.push(index - 1 === expected ? `${name}.${expected}` : `${name}.${expected}-${index - 1}`);
    expected = index + 1;
    const itemName = `${name}.${index}`;
    const itemPointer = `${pointer}/${items.length}`;
    ctx.names.set(itemPointer, { name: itemName, whole: false });
    const step = decodeValue(schema.items, child, itemName, itemPointer, ctx);
    if (!step.ok) return step;
    if (step.value === undefined) return invalidParam(itemName, 'has no value');
    items.push(step.value);
  }
  return { ok: true, value: items };
}

/** A list sent as one value: JSON text (generated SDK, style "json") or comma-joined (style "simple"). */
function decodeListText(schema: TArray, text: string, name: string, pointer: string, ctx: Context): Step {
  const trimmed = text.trim();
  const maxItems = ctx.limits.maxIndex;
  ctx.names.set(pointer, { name, whole: true });
  if (trimmed.startsWith('[')) {
    const parsed = parseJsonParam(name, trimmed, ctx.limits.maxDepth);
    if (!parsed.ok) return parsed;
    if (!Array.isArray(parsed.value)) return invalidParam(name, 'must be a JSON array');
    if (parsed.value.length > maxItems) return invalidParam(name, `has ${parsed.value.length} items; at most ${maxItems} are accepted`);
    return { ok: true, value: parsed.value.map((item: unknown) => coerceJson(schema.items, item)) };
  }
  if (Type.IsObject(schema.items) || Type.IsArray(schema.items)) return invalidParam(name, `must be a JSON array or ${name}.N.<Field> params`);
  if (trimmed === '') return { ok: true, value: [] };
  const parts = trimmed.split(',');
  if (parts.length > maxItems) return invalidParam(name, `has ${parts.length} items; at most ${maxItems} are accepted`);
  return { ok: true, value: parts.map((part) => coerceText(schema.items, part.trim())) };
}

/** An object sent as one value: only JSON text is meaningful. */
function decodeObjectText(schema: TObject, text: string, name: string, pointer: string, ctx: Context): Step {
  const trimmed = text.trim();
  if (trimmed === '') return { ok: true, value: undefined };
  // pop-core stringifies a top-level plain object instead of flattening it (alibaba-rpc.md §7).
  if (trimmed === '[object Object]') return invalidParam(name, `arrived as "[object Object]"; send it as ${name}.<Field> params or as JSON text`);
  if (!trimmed.startsWith('{')) return invalidParam(name, `must be given as ${name}.<Field> params or as a JSON object`);
  const parsed = parseJsonParam(name, trimmed, ctx.limits.maxDepth);
  if (!parsed.ok) return parsed;
  ctx.names.set(pointer, { name, whole: true });
  return { ok: true, value: coerceJson(schema, parsed.value) };
}

/**
 * Bring a parsed JSON value to the schema's shape: declared fields only (so `__proto__` and
 * strays never reach handlers), and numeric or boolean text coerced where the schema wants it.
 */
function coerceJson(schema: TSchema, value: unknown): unknown {
  if (Type.IsArray(schema)) return Array.isArray(value) ? value.map((item: unknown) => coerceJson(schema.items, item)) : value;
  if (Type.IsObject(schema)) {
    if (!isRecord(value)) return value;
    const out: Record<string, unknown> = {};
    for (const [prop, propSchema] of Object.entries(schema.properties)) {
      if (!Object.hasOwn(value, prop)) continue;
      const coerced = coerceJson(propSchema, value[prop]);
      if (coerced !== undefined) out[prop] = coerced;
    }
    return out;
  }
  return typeof value === 'string' ? coerceText(schema, value) : value;
}

/** Wire text to the primitive the schema wants; text that does not fit is kept so validation names the problem. */
function coerceText(schema: TSchema, text: string): unknown {
  const kinds = primitiveKinds(schema);
  if (kinds.size === 0 || kinds.has('string')) return text;
  if (text === '') return undefined;
  if (kinds.has('number') && numberPattern.test(text)) {
    const number = Number(text);
    // An integer (a long id, epoch ms) beyond 2^53 would silently lose digits; keep the text so it
    // fails as "out of range". A float field takes float rounding as it comes.
    const lossy = !Number.isFinite(number) || (Type.IsInteger(schema) && Number.isInteger(number) && !Number.isSafeInteger(number));
    if (!lossy) return number;
  }
  if (kinds.has('boolean')) {
    const lower = text.toLowerCase();
    if (lower === 'true') return true;
    if (lower === 'false') return false;
  }
  return text;
}

type PrimitiveKind = 'string' | 'number' | 'boolean';

/** Which primitives a leaf schema accepts; empty for kinds this decoder leaves alone (Unknown, Any…). */
function primitiveKinds(schema: TSchema): ReadonlySet<PrimitiveKind> {
  if (Type.IsString(schema) || Type.IsTemplateLiteral(schema)) return new Set(['string']);
  if (Type.IsNumber(schema) || Type.IsInteger(schema)) return new Set(['number']);
  if (Type.IsBoolean(schema)) return new Set(['boolean']);
  if (Type.IsLiteral(schema)) return kindsOf([schema.const]);
  if (Type.IsEnum(schema)) return kindsOf(schema.enum);
  if (Type.IsUnion(schema)) return new Set(schema.anyOf.flatMap((variant) => [...primitiveKinds(variant)]));
  return new Set();
}

function kindsOf(values: readonly unknown[]): ReadonlySet<PrimitiveKind> {
  const kinds = new Set<PrimitiveKind>();
  for (const value of values) {
    if (typeof value === 'string') kinds.add('string');
    else if (typeof value === 'number' || typeof value === 'bigint') kinds.add('number');
    else if (typeof value === 'boolean') kinds.add('boolean');
  }
  return kinds;
}

/** Deepest bracket nesting of JSON text, ignoring brackets inside strings; linear and allocation-free. */
function jsonNestingDepth(text: string): number {
  let depth = 0;
  let deepest = 0;
  let inString = false;
  for (let i = 0; i < text.length; i += 1) {
    const ch = text.charCodeAt(i);
    if (inString) {
      if (ch === 0x5c) i += 1; // a backslash escapes the next character, including a quote
      else if (ch === 0x22) inString = false;
    } else if (ch === 0x22) inString = true;
    else if (ch === 0x5b || ch === 0x7b) deepest = Math.max(deepest, ++depth);
    else if (ch === 0x5d || ch === 0x7d) depth -= 1;
  }
  return deepest;
}

function givenTwice(name: string): ParamFailure {
  return invalidParam(name, `is given both as one value and as ${name}.<…> params; send one form`);
}

function joinName(parent: string, child: string): string {
  return parent === '' ? child : `${parent}.${child}`;
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
