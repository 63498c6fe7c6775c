import { ActionRegistry } from './action-registry.ts';
import { accessTokenActions } from './smc/access-token-actions.ts';

/** Every POP action Ferry serves. A new action file adds its list here. */
export function buildActionRegistry(): ActionRegistry {
  return new ActionRegistry().register(...accessTokenActions);
}
