import type { HeartbeatResponse, RegisterResponse, SourceFacts } from '../core/agent-protocol.ts';
import type { Clock } from '../core/clock.ts';
import { AppError } from '../core/errors.ts';
import { newId } from '../core/ids.ts';
import { createAccessKey } from '../identity/access-keys.ts';
import { attachPolicy } from '../identity/policies.ts';
import type { SecretBox } from '../identity/secret-box.ts';
import type { Database } from '../store/database.ts';
import type { SourceServerTable } from '../store/schema-smc.ts';
import { redeemAccessToken } from './access-tokens.ts';
import { agentSettings } from './agent-settings.ts';
import { isUniqueViolation } from './db-errors.ts';
import { checkName } from './validation.ts';

/** An agent's key may call the agent routes and nothing else: a stolen agent key cannot drive the account. */
export const agentPolicy = { Version: '1', Statement: [{ Effect: 'Allow' as const, Action: 'ferry:Agent*', Resource: '*' }] };

export interface RegistrationDeps {
  readonly database: Database;
  readonly clock: Clock;
  readonly secrets: SecretBox;
}

/** Who registers: an account's signed caller, or the holder of an activation code. */
export type Registrant = { readonly accountId: string } | { readonly accessTokenId: string; readonly accessTokenCode: string };

function factColumns(facts: SourceFacts) {
  return {
    agent_version: facts.agentVersion,
    hostname: facts.hostname,
    platform: facts.platform,
    architecture: facts.architecture,
    kernel_level: facts.kernelLevel,
    facts: JSON.stringify(facts),
  };
}

function checkFacts(facts: SourceFacts): void {
  if (facts.disks.length === 0) throw new AppError('MissingParameter', { name: 'facts.disks (give the agent at least one --disk)' });
  if (facts.disks.some((d, i) => d.index !== i)) throw new AppError('InvalidParameter', { name: 'facts.disks', reason: 'must be indexed 0, 1, … in order' });
}

/**
 * Register a source server for an agent. An activation code spends one of its registrations
 * (Count and TimeToLiveInDays enforced, RegisteredCount kept) in the same transaction that
 * creates the source and the agent's own access key, so a refused registration spends nothing.
 */
export async function registerSourceServer(deps: RegistrationDeps, registrant: Registrant, name: string, facts: SourceFacts): Promise<RegisterResponse> {
  checkName('name', name);
  checkFacts(facts);
  const now = deps.clock.nowMs();
  return deps.database.db.transaction().execute(async (trx) => {
    const accountId = 'accountId' in registrant ? registrant.accountId : (await redeemAccessToken(trx, now, registrant.accessTokenId, registrant.accessTokenCode)).accountId;
    const taken = await trx.selectFrom('source_servers').select('id').where('account_id', '=', accountId).where('name', '=', name).executeTakeFirst();
    if (taken !== undefined) throw new AppError('SourceServerNameDuplicate', { name });
    const key = await createAccessKey(trx, deps.secrets, deps.clock, accountId);
    await attachPolicy(trx, deps.clock, key.id, agentPolicy);
    const row: SourceServerTable = {
      id: newId('s'),
      account_id: accountId,
      name,
      description: '',
      deleting: 0,
      agent_key_id: key.id,
      access_token_id: 'accessTokenId' in registrant ? registrant.accessTokenId : null,
      workgroup_id: null,
      resource_group_id: '',
      ...factColumns(facts),
      last_seen_at: now,
      created_at: now,
      updated_at: now,
    };
    await trx
      .insertInto('source_servers')
      .values(row)
      .execute()
      .catch((err: unknown) => {
        throw isUniqueViolation(err, 'source_servers_name', ['account_id', 'name']) ? new AppError('SourceServerNameDuplicate', { name }) : err;
      });
    return { sourceId: row.id, accessKeyId: key.id, accessKeySecret: key.secret, heartbeatSeconds: agentSettings().heartbeatSeconds };
  });
}

/** The source whose agent holds `accessKeyId`, or Forbidden.NotAgent for any other key. */
export async function requireAgentSource(database: Database, accountId: string, accessKeyId: string): Promise<SourceServerTable> {
  const row = await database.db.selectFrom('source_servers').selectAll().where('agent_key_id', '=', accessKeyId).where('account_id', '=', accountId).executeTakeFirst();
  if (row === undefined) throw new AppError('AgentNotRegistered', { accessKeyId });
  return row;
}

/** The agent is alive: note the time it was heard from, and new facts when it sends them. */
export async function recordHeartbeat(database: Database, clock: Clock, source: SourceServerTable, facts: SourceFacts | undefined): Promise<HeartbeatResponse> {
  const now = clock.nowMs();
  if (facts !== undefined) checkFacts(facts);
  await database.db
    .updateTable('source_servers')
    .set({ last_seen_at: now, updated_at: now, ...(facts === undefined ? {} : factColumns(facts)) })
    .where('id', '=', source.id)
    .execute();
  return { sourceId: source.id, heartbeatSeconds: agentSettings().heartbeatSeconds };
}
