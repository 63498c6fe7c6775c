import { AppError } from '../core/errors.ts';
import { findAccountById } from '../identity/accounts.ts';
import type { ServiceContext } from './service-context.ts';

/**
 * The fleet (regions, hosts, placement) is shared infrastructure, not an account's resource:
 * only keys of the operator account, `default` (the account `ferry admin create-key` makes
 * unless told otherwise), may change it or see all of it. Policies can narrow that further.
 */
export const operatorAccountName = 'default';

export async function requireOperator(ctx: ServiceContext): Promise<void> {
  const account = await findAccountById(ctx.database.db, ctx.accountId);
  if (account?.name !== operatorAccountName) {
    throw new AppError('ForbiddenRam', { action: 'fleet administration', resource: 'the fleet', denial: `only keys of the "${operatorAccountName}" operator account may do this` });
  }
}

export async function isOperator(ctx: ServiceContext): Promise<boolean> {
  return (await findAccountById(ctx.database.db, ctx.accountId))?.name === operatorAccountName;
}
