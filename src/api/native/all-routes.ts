import type { NativeRoutes } from './native-door.ts';
import { agentRoutes } from './routes/agent.ts';
import { agentStreamRoutes } from './routes/agent-stream.ts';
import { agentTreeRoutes } from './routes/agent-tree.ts';
import { fleetRoutes } from './routes/fleet.ts';
import { jobRoutes } from './routes/jobs.ts';
import { eventRoutes } from './routes/events.ts';
import { replicationRoutes } from './routes/replication.ts';

/** Every native route group; a new group adds itself here. */
export const nativeRoutes: readonly NativeRoutes[] = [jobRoutes, fleetRoutes, agentRoutes, agentStreamRoutes, agentTreeRoutes, eventRoutes, replicationRoutes];
