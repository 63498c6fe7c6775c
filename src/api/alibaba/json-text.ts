/**
 * JSON text of answers, with the text of shared values spliced in. A Describe answer is mostly
 * the wire forms of resources that did not change since the last call (frozen, remembered per
 * resource); each is serialised once, when it is made, not on every answer that carries it.
 */

const rememberedText = new WeakMap<object, string>();

/** How far below the body a remembered value is looked for: body, list holder, list, item. */
const spliceDepth = 3;

/** Serialise `value` now and splice that text into every answer that carries it; `value` must be deeply frozen, so the text cannot go stale. */
export function rememberJsonText<T extends object>(value: T): T {
  if (!Object.isFrozen(value)) throw new Error('rememberJsonText takes frozen values only');
  rememberedText.set(value, JSON.stringify(value));
  return value;
}

/** The same text as JSON.stringify(body), with remembered values' text reused. */
export function jsonText(body: object): string {
  return textOf(body, spliceDepth) ?? 'null';
}

function textOf(value: unknown, depth: number): string | undefined {
  if (typeof value !== 'object' || value === null) return JSON.stringify(value);
  const remembered = rememberedText.get(value);
  if (remembered !== undefined) return remembered;
  if (depth === 0 || !holdsRemembered(value, depth)) return JSON.stringify(value);
  if (Array.isArray(value)) {
    // As JSON.stringify does: an item without a JSON form (undefined, a function) is null.
    return `[${value.map((item: unknown) => textOf(item, depth - 1) ?? 'null').join(',')}]`;
  }
  const fields: string[] = [];
  for (const [name, field] of Object.entries(value)) {
    const text = textOf(field, depth - 1);
    if (text !== undefined) fields.push(`${JSON.stringify(name)}:${text}`);
  }
  return `{${fields.join(',')}}`;
}

/** Whether a remembered value sits within `depth` levels of `value`, through plain objects and arrays only. */
function holdsRemembered(value: object, depth: number): boolean {
  if (!isPlainContainer(value)) return false;
  const children: unknown[] = Object.values(value);
  for (const child of children) {
    if (typeof child !== 'object' || child === null) continue;
    if (rememberedText.has(child)) return true;
    if (depth > 1 && holdsRemembered(child, depth - 1)) return true;
  }
  return false;
}

/** An array or an object of the Object prototype without toJSON: what JSON.stringify serialises field by field. */
function isPlainContainer(value: object): boolean {
  if (Array.isArray(value)) return true;
  const prototype: unknown = Object.getPrototypeOf(value);
  return (prototype === Object.prototype || prototype === null) && !('toJSON' in value);
}
