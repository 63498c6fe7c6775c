/**
 * Shapes shared by the SMC actions: the paging and Tag.N param schemas, and the translation of
 * domain views (camel-cased API names) to the wire (Pascal-cased, lists in `Plural.Singular[]`).
 */
import { Type } from 'typebox';
import type { Page } from '../../../migration/paging.ts';
import type { Tag } from '../../../migration/tags.ts';

/** Ids in JobId.N and the like; the count limit (50) is checked by the service, which names it. */
export const idList = Type.Optional(Type.Array(Type.String({ maxLength: 128 }), { maxItems: 1000 }));

/** Tag.N.Key / Tag.N.Value; the count and text rules are checked by the service. */
export const tagList = Type.Optional(Type.Array(Type.Object({ Key: Type.Optional(Type.String({ maxLength: 1024 })), Value: Type.Optional(Type.String({ maxLength: 1024 })) }), { maxItems: 1000 }));

export const pageParams = {
  PageNumber: Type.Optional(Type.Integer({ minimum: 1, maximum: 10_000_000 })),
  PageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
};

/** Free text the service checks (names, descriptions, ids); the bound only keeps requests small. */
export const text = (maxLength = 512) => Type.Optional(Type.String({ maxLength }));

export function tagFilters(tags: readonly { Key?: string; Value?: string }[] | undefined): { key?: string; value?: string }[] | undefined {
  return tags?.map((t) => ({ ...(t.Key === undefined ? {} : { key: t.Key }), ...(t.Value === undefined ? {} : { value: t.Value }) }));
}

export function tagsWire(tags: readonly Tag[]): { Tag: { Key: string; Value: string }[] } {
  return { Tag: tags.map((t) => ({ Key: t.key, Value: t.value })) };
}

/** `jobId` → `JobId`, `vSwitchId` → `VSwitchId`: the API's names are the views' with a capital first letter; `except` names fields left out. */
export function pascalKeys(view: object, except?: ReadonlySet<string>): Record<string, unknown> {
  const out: Record<string, unknown> = {};
  for (const key in view) {
    if (Object.hasOwn(view, key) && except?.has(key) !== true) out[pascalName(key)] = (view as Record<string, unknown>)[key];
  }
  return out;
}

// Views have a few dozen field names in all: each is capitalised once, not on every answer.
const pascalNames = new Map<string, string>();

function pascalName(key: string): string {
  let name = pascalNames.get(key);
  if (name === undefined) {
    name = key.charAt(0).toUpperCase() + key.slice(1);
    if (pascalNames.size < 10_000) pascalNames.set(key, name);
  }
  return name;
}

/** The paging trio of a Describe* answer plus its list under `Plural.Singular`. */
export function pageWire<T>(page: Page<T>, plural: string, singular: string, item: (value: T) => Record<string, unknown>): Record<string, unknown> {
  return { PageNumber: page.pageNumber, PageSize: page.pageSize, TotalCount: page.totalCount, [plural]: { [singular]: page.items.map(item) } };
}
