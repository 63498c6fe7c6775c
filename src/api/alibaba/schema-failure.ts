/**
 * Explains why a decoded request fails its TypeBox schema in the client's terms: the param as it
 * was spelled on the wire (`DataDisk.3.Size`, even when list gaps moved the item) and a reason
 * that says what to send instead, never TypeBox's JSON-pointer vocabulary.
 */
import type { TSchema } from 'typebox';
import type { TLocalizedValidationError } from 'typebox/error';
import { Value } from 'typebox/value';
import { invalidParam, missingParam, type ParamFailure } from '../common/param-failure.ts';

/** How a decoded value was spelled on the wire; `whole` when it arrived as one JSON or comma text. */
export interface WireName {
  readonly name: string;
  readonly whole: boolean;
}

/** Wire name recorded for a JSON pointer into the decoded value, where plain dotting would get it wrong. */
export type WireNameLookup = (pointer: string) => WireName | undefined;

/** The first schema violation of `value`, as a MissingParameter or InvalidParameter failure. */
export function describeSchemaFailure(schema: TSchema, value: unknown, wireNameAt: WireNameLookup): ParamFailure {
  const errors = Value.Errors(schema, value);
  const first = errors[0];
  if (first === undefined) return invalidParam('*', 'is invalid');
  // A union reports one error per variant; the union's own error reads better than variant 0's.
  const union = errors.find((e) => e.keyword === 'anyOf' && isPathPrefix(e.schemaPath, first.schemaPath) && isPathPrefix(e.instancePath, first.instancePath));
  const error = union ?? first;
  if (error.keyword === 'required') {
    const holder = valueAt(value, error.instancePath);
    const absent = error.params.requiredProperties.find((prop) => !isRecord(holder) || !Object.hasOwn(holder, prop)) ?? '';
    const spot = locate(`${error.instancePath}/${escapePointer(absent)}`, wireNameAt);
    return spot.inner.length === 0 ? missingParam(spot.field) : invalidParam(spot.field, `${describeInner(spot.inner)} is missing`);
  }
  const spot = locate(error.instancePath, wireNameAt);
  const reason = reasonFor(error, valueAt(value, error.instancePath), schemaAt(schema, error.schemaPath));
  return invalidParam(spot.field, spot.inner.length === 0 ? reason : `${describeInner(spot.inner)} ${reason}`);
}

/** Escape one JSON-pointer segment (`~` → `~0`, `/` → `~1`). */
export function escapePointer(segment: string): string {
  return segment.replaceAll('~', '~0').replaceAll('/', '~1');
}

/** The wire field for a pointer, plus the path inside it when the field arrived as one JSON/comma text. */
function locate(pointer: string, wireNameAt: WireNameLookup): { field: string; inner: string[] } {
  let field = '';
  let inner: string[] | undefined;
  let current = '';
  for (const segment of splitPointer(pointer)) {
    current += `/${escapePointer(segment)}`;
    if (inner !== undefined) {
      inner.push(segment);
      continue;
    }
    const known = wireNameAt(current);
    if (known === undefined) field = field === '' ? segment : `${field}.${segment}`;
    else {
      field = known.name;
      if (known.whole) inner = [];
    }
  }
  return { field: field === '' ? '*' : field, inner: inner ?? [] };
}

/** `item 2 PlanTime` for the pointer segments `1`, `PlanTime` inside a JSON list. */
function describeInner(segments: readonly string[]): string {
  return segments.map((s) => (/^\d+$/.test(s) ? `item ${Number(s) + 1}` : s)).join(' ');
}

function reasonFor(error: TLocalizedValidationError, actual: unknown, schemaHere: unknown): string {
  switch (error.keyword) {
    case 'type':
      return typeReason(error.params.type, actual);
    case 'minimum':
      return `is too small; the minimum is ${String(error.params.limit)}`;
    case 'exclusiveMinimum':
      return `is too small; it must be greater than ${String(error.params.limit)}`;
    case 'maximum':
      return `is too large; the maximum is ${String(error.params.limit)}`;
    case 'exclusiveMaximum':
      return `is too large; it must be less than ${String(error.params.limit)}`;
    case 'minLength':
      return `is too short; it needs at least ${error.params.limit} characters`;
    case 'maxLength':
      return `is too long; at most ${error.params.limit} characters are accepted`;
    case 'minItems':
      return `has too few items; at least ${error.params.limit} are needed`;
    case 'maxItems':
      return `has too many items; at most ${error.params.limit} are accepted`;
    case 'pattern':
      return 'has the wrong format';
    case 'format':
      return `is not a valid ${error.params.format}`;
    case 'enum':
      return `must be one of: ${error.params.allowedValues.map(String).join(', ')}`;
    case 'const':
      return `must be ${String(error.params.allowedValue)}`;
    case 'anyOf': {
      const allowed = literalValues(schemaHere);
      return allowed === undefined ? 'matches none of the accepted forms' : `must be one of: ${allowed.join(', ')}`;
    }
    case 'uniqueItems':
      return 'has repeated items';
    case 'multipleOf':
      return `must be a multiple of ${String(error.params.multipleOf)}`;
    default:
      return error.message;
  }
}

function typeReason(expected: string | string[], actual: unknown): string {
  const wanted = Array.isArray(expected) ? expected : [expected];
  if (wanted.includes('integer') || wanted.includes('number')) {
    // coerceText keeps numeric text it could not represent exactly (beyond 2^53, beyond 1e308).
    if (typeof actual === 'string' && /^-?\d/.test(actual)) return 'is out of range';
    if (typeof actual === 'number') return 'must be a whole number';
    return 'is not a number';
  }
  if (wanted.includes('boolean')) return 'must be true or false';
  if (wanted.includes('string')) return 'must be text';
  if (wanted.includes('array')) return 'must be a list';
  if (wanted.includes('object')) return 'must be a set of fields';
  return `must be of type ${wanted.join(' or ')}`;
}

/** The literal values of a union of literals (an enum written as Type.Union of Type.Literal). */
function literalValues(schema: unknown): string[] | undefined {
  if (!isRecord(schema) || !Array.isArray(schema['anyOf'])) return undefined;
  const variants: unknown[] = schema['anyOf'];
  if (!variants.every((v) => isRecord(v) && 'const' in v)) return undefined;
  return variants.map((v) => String(isRecord(v) ? v['const'] : v));
}

function schemaAt(schema: TSchema, schemaPath: string): unknown {
  return walk(schema, splitPointer(schemaPath.replace(/^#/, '')));
}

function valueAt(value: unknown, pointer: string): unknown {
  return walk(value, splitPointer(pointer));
}

function walk(root: unknown, segments: readonly string[]): unknown {
  let node = root;
  for (const segment of segments) {
    if (Array.isArray(node)) node = node[Number(segment)] as unknown;
    else if (isRecord(node) && Object.hasOwn(node, segment)) node = node[segment];
    else return undefined;
  }
  return node;
}

function splitPointer(pointer: string): string[] {
  if (pointer === '') return [];
  return pointer.slice(1).split('/').map((s) => s.replaceAll('~1', '/').replaceAll('~0', '~'));
}

function isPathPrefix(prefix: string, path: string): boolean {
  return path === prefix || path.startsWith(`${prefix}/`);
}

function isRecord(value: unknown): value is Record<string, unknown> {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}
