import type { NativeRoutes } from './native-door.ts';
import { fleetRoutes } from './routes/fleet.ts';
import { jobRoutes } from './routes/jobs.ts';

/** Every native route group; a new group adds itself here. */
export const nativeRoutes: readonly NativeRoutes[] = [jobRoutes, fleetRoutes];
