import { deepFreeze } from './deep-freeze.ts';

/**
 * A value remembered per key together with the exact inputs it was made from: asked again with
 * equal inputs (each compared with ===) it is returned as it is, asked with any other inputs it
 * is made anew. Only as fresh as its inputs, so a caller that reads the inputs from the database on
 * every call still answers from the database; what it saves is the work of turning them into the value.
 * A remembered value is shared by every caller that gets it, so it is frozen, all the way down.
 */
export class InputMemo<V> {
  readonly #entries = new Map<string, { readonly inputs: readonly unknown[]; readonly value: V }>();

  /** `maxEntries`: how many keys it holds before it starts over. */
  constructor(readonly maxEntries: number) {}

  /** The value for `key` made from `inputs`: remembered if they equal the last ones, else `make()`. */
  get(key: string, inputs: readonly unknown[], make: () => V): V {
    const entry = this.#entries.get(key);
    if (entry !== undefined && sameInputs(entry.inputs, inputs)) return entry.value;
    const value = deepFreeze(make());
    if (entry === undefined && this.#entries.size >= this.maxEntries) this.#entries.clear();
    this.#entries.set(key, { inputs, value });
    return value;
  }
}

function sameInputs(a: readonly unknown[], b: readonly unknown[]): boolean {
  if (a.length !== b.length) return false;
  for (let i = 0; i < a.length; i += 1) if (a[i] !== b[i]) return false;
  return true;
}
