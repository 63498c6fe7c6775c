/** Operator-set host states. Only `Available` hosts take new placements. */
export const hostStates = ['Available', 'Maintenance', 'Failed', 'Offline'] as const;
export type HostState = (typeof hostStates)[number];

export function isHostState(value: string): value is HostState {
  return (hostStates as readonly string[]).includes(value);
}
