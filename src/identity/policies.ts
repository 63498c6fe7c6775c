import { Type, type Static } from 'typebox';
import { Value } from 'typebox/value';
import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import type { Db } from '../store/database.ts';

const stringOrList = Type.Union([Type.String({ minLength: 1, maxLength: 512 }), Type.Array(Type.String({ minLength: 1, maxLength: 512 }), { minItems: 1, maxItems: 100 })]);

/** A RAM-like policy: Deny wins over Allow; anything not allowed is denied. */
export const PolicyDocument = Type.Object({
  Version: Type.Optional(Type.String()),
  Statement: Type.Array(
    Type.Object({
      Effect: Type.Union([Type.Literal('Allow'), Type.Literal('Deny')]),
      Action: stringOrList,
      Resource: stringOrList,
    }),
    { minItems: 1, maxItems: 100 },
  ),
});
export type PolicyDocument = Static<typeof PolicyDocument>;

export function parsePolicy(text: string): PolicyDocument {
  let value: unknown;
  try {
    value = JSON.parse(text);
  } catch (err) {
    throw new AppError('InvalidPolicy', { reason: `not JSON (${(err as Error).message})` });
  }
  if (!Value.Check(PolicyDocument, value)) {
    const first = Value.Errors(PolicyDocument, value)[0];
    throw new AppError('InvalidPolicy', { reason: first === undefined ? 'does not match the policy schema' : `${first.instancePath || '/'} ${first.message}` });
  }
  return value;
}

/** `*` matches any run of characters, `?` one character; the rest is literal. */
function globToRegExp(glob: string, caseInsensitive: boolean): RegExp {
  const body = glob.replace(/[.+^${}()|[\]\\]/g, '\\$&').replace(/\*/g, '.*').replace(/\?/g, '.');
  return new RegExp(`^${body}$`, caseInsensitive ? 'i' : '');
}

function asList(value: string | readonly string[]): readonly string[] {
  return typeof value === 'string' ? [value] : value;
}

export type PolicyDecision = { allowed: true } | { allowed: false; denial: 'ExplicitDeny' | 'ImplicitDeny' };

/**
 * Decide whether `action` (e.g. `smc:CreateReplicationJob`) on every one of `resources` is allowed.
 * Action names match case-insensitively, as RAM does; resource names match exactly.
 */
export function evaluatePolicy(policy: PolicyDocument, action: string, resources: readonly string[]): PolicyDecision {
  const matches = (statement: PolicyDocument['Statement'][number], resource: string): boolean =>
    asList(statement.Action).some((a) => globToRegExp(a, true).test(action)) &&
    asList(statement.Resource).some((r) => globToRegExp(r, false).test(resource));
  for (const resource of resources) {
    if (policy.Statement.some((s) => s.Effect === 'Deny' && matches(s, resource))) return { allowed: false, denial: 'ExplicitDeny' };
  }
  for (const resource of resources) {
    if (!policy.Statement.some((s) => s.Effect === 'Allow' && matches(s, resource))) return { allowed: false, denial: 'ImplicitDeny' };
  }
  return { allowed: true };
}

/** Attach (replace) the policy of an access key. */
export async function attachPolicy(db: Db, clock: Clock, accessKeyId: string, document: PolicyDocument): Promise<void> {
  const key = await db.selectFrom('access_keys').select('id').where('id', '=', accessKeyId).executeTakeFirst();
  if (key === undefined) throw new AppError('InvalidAccessKeyIdNotFound', { accessKeyId });
  const text = JSON.stringify(document);
  await db
    .insertInto('key_policies')
    .values({ access_key_id: accessKeyId, document: text, updated_at: clock.nowMs() })
    .onConflict((oc) => oc.column('access_key_id').doUpdateSet({ document: text, updated_at: clock.nowMs() }))
    .execute();
}

export async function detachPolicy(db: Db, accessKeyId: string): Promise<void> {
  await db.deleteFrom('key_policies').where('access_key_id', '=', accessKeyId).execute();
}
