/** Fleet inventory tables (regions, zones, hosts, instances, disks, placement claims). */
// eslint-disable-next-line @typescript-eslint/no-empty-object-type
export interface FleetTables {}
