import { ActionRegistry } from './action-registry.ts';
import { eventActions } from './ens/event-actions.ts';
import { accessTokenActions } from './smc/access-token-actions.ts';
import { crossZoneActions } from './smc/cross-zone-actions.ts';
import { replicationJobActions } from './smc/replication-job-actions.ts';
import { sourceServerActions } from './smc/source-server-actions.ts';
import { tagActions } from './smc/tag-actions.ts';
import { workgroupActions } from './smc/workgroup-actions.ts';

/** Every POP action Ferry serves. A new action file adds its list here. */
export function buildActionRegistry(): ActionRegistry {
  return new ActionRegistry().register(...accessTokenActions, ...sourceServerActions, ...replicationJobActions, ...workgroupActions, ...tagActions, ...eventActions, ...crossZoneActions);
}
