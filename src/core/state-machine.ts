/**
 * State machines as data: a table of `from -> event -> to` rows. Code asks the table,
 * it never encodes transitions in `if` chains, and property tests walk the table.
 */

export interface Transition<S extends string, E extends string> {
  readonly from: S;
  readonly event: E;
  readonly to: S;
}

export class StateMachine<S extends string, E extends string> {
  readonly states: readonly S[];
  readonly events: readonly E[];
  readonly transitions: readonly Transition<S, E>[];
  readonly #index: Map<string, S>;

  constructor(states: readonly S[], events: readonly E[], transitions: readonly Transition<S, E>[]) {
    this.states = states;
    this.events = events;
    this.transitions = transitions;
    this.#index = new Map();
    for (const t of transitions) {
      const key = `${t.from}\u0000${t.event}`;
      if (this.#index.has(key)) throw new Error(`duplicate transition ${t.from} --${t.event}->`);
      this.#index.set(key, t.to);
    }
  }

  /** The state after `event` in `from`, or undefined when the table has no such row. */
  next(from: S, event: E): S | undefined {
    return this.#index.get(`${from}\u0000${event}`);
  }

  can(from: S, event: E): boolean {
    return this.next(from, event) !== undefined;
  }

  /** States `event` may leave from; used to guard conditional UPDATEs in SQL. */
  sourcesOf(event: E): S[] {
    return this.transitions.filter((t) => t.event === event).map((t) => t.from);
  }
}

/** Build a transition table from compact `[from, event, to]` rows. */
export function table<S extends string, E extends string>(
  states: readonly S[],
  events: readonly E[],
  rows: ReadonlyArray<readonly [S, E, S]>,
): StateMachine<S, E> {
  return new StateMachine(states, events, rows.map(([from, event, to]) => ({ from, event, to })));
}
