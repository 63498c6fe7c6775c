/**
 * The fleet layer's public API: protocol-agnostic services that the CLI, the native REST API
 * and the migration workflows call. Everything takes an open `Database` (store/database.ts).
 */
export { type ApplyFleetOptions, type ApplyFleetResult, type ChangeKind, type FleetKind, FleetRefusedError, applyFleet, fleetKinds } from './apply-fleet.ts';
export { type ColdMoveOptions, type ColdMoveResult, type MoveProgress, type MovedDisk, coldMoveInstance, rollbackColdMove } from './cold-move.ts';
export * from './compute-driver.ts';
export { type FleetIssue, type FleetSpec, FleetSpecSchema, FleetValidationError, parseFleetYaml, planFleet } from './fleet-spec.ts';
export { type HostState, hostStates } from './host-states.ts';
export { type InstanceEvent, type InstanceStatus, instanceEvents, instanceMachine, instanceStatuses } from './instance-states.ts';
export { transitionInstance, transitionInstanceThrough } from './instance-transition.ts';
export { type CommittedClaim, type PlacementClaim } from './placement/claims.ts';
export { type DryRunResult, type Rejection } from './placement/dry-run.ts';
export { type FilterName, filterNames } from './placement/filters.ts';
export {
  NoValidHostError,
  Placement,
  type PlacementOptions,
  claimPlacement,
  commitClaim,
  dryRun,
  forgetPlacement,
  placementFor,
  releaseClaim,
  releaseExpiredClaims,
} from './placement/placement.ts';
export { type PlacementRequest } from './placement/request.ts';
export { type Weigher, weighers } from './placement/weighers.ts';
export { type HostStateChange, setHostState } from './set-host-state.ts';
export { type FleetView, type HostView, type InstanceView, showFleet, showInstance } from './show-fleet.ts';
export { SimComputeDriver, type SimDriverOptions, type SimFaults, createSimFaults } from './sim-driver.ts';
export { contentDigest } from './sparse-file.ts';
export { demoFleet } from './demo-fleet.ts';
