import type { Static, TObject } from 'typebox';
import type { ServiceContext } from '../../migration/service-context.ts';

/** The API products served at `/`, with their version and the product name used in troubleshooting links. */
export const popProducts = {
  smc: { version: '2019-06-01', displayName: 'Smc', host: 'smc.aliyuncs.com' },
  ens: { version: '2017-11-10', displayName: 'Ens', host: 'ens.aliyuncs.com' },
} as const;
export type PopProduct = keyof typeof popProducts;

/**
 * One POP RPC action: its decoded-param schema (the single source for validation, types and
 * docs), the RAM resources a call touches, and the domain call it translates to.
 */
export interface PopAction<S extends TObject = TObject> {
  readonly product: PopProduct;
  readonly name: string;
  readonly params: S;
  /** Takes a ClientToken param and replays the first answer for a repeated token. */
  readonly idempotent?: boolean;
  /** RAM resource names the call acts on; default `acs:<product>:*:<accountId>:*`. */
  readonly resources?: (params: Static<S>, accountId: string) => readonly string[];
  /** Fields of the success body next to RequestId. */
  readonly handle: (ctx: ServiceContext, params: Static<S>) => Promise<Record<string, unknown>>;
  readonly summary?: string;
}

/** Define an action with its params' static type inferred from the schema. */
export function popAction<S extends TObject>(action: PopAction<S>): PopAction {
  return action;
}

/** Actions by `product:Version:Action`; the property test walks every registered one. */
export class ActionRegistry {
  readonly #actions = new Map<string, PopAction>();

  register(...actions: readonly PopAction[]): this {
    for (const action of actions) {
      const key = this.#key(popProducts[action.product].version, action.name);
      if (this.#actions.has(key)) throw new Error(`action ${action.name} registered twice`);
      this.#actions.set(key, action);
    }
    return this;
  }

  find(version: string, name: string): PopAction | undefined {
    return this.#actions.get(this.#key(version, name));
  }

  all(): PopAction[] {
    return [...this.#actions.values()];
  }

  #key(version: string, name: string): string {
    return `${version}:${name}`;
  }
}
