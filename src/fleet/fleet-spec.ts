/**
 * The fleet file (DESIGN.md, "Fleet file"): its TypeBox schema, the one source for validation,
 * the TypeScript type and OpenAPI, and the checks a schema cannot say (unique ids, sizes that
 * agree). Errors name the place in the file: `instances[3].host: unknown host host-x`.
 */
import Type from 'typebox';
import { Compile } from 'typebox/compile';
import { parseDocument } from 'yaml';
import { AppError } from '../core/errors.ts';
import { hostStates } from './host-states.ts';
import { declarableStatuses } from './instance-states.ts';

export const diskKinds = ['system', 'data'] as const;
export const diskCategories = ['cloud_essd', 'cloud_ssd', 'cloud_efficiency'] as const;
export const performanceLevels = ['PL0', 'PL1', 'PL2', 'PL3'] as const;

const mibPerGib = 1024;
const idPattern = '^[A-Za-z0-9][A-Za-z0-9._:-]*$';
const accountNamePattern = '^[a-z][a-z0-9-]{0,62}$';
const cidrPattern = '^((25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])\\.){3}(25[0-5]|2[0-4][0-9]|1?[0-9]?[0-9])/([0-9]|[12][0-9]|3[0-2])$';

const Id = Type.String({ minLength: 1, maxLength: 128, pattern: idPattern });
const AccountName = Type.String({ pattern: accountNamePattern });
const Gib = Type.Number({ exclusiveMinimum: 0 });
const strict = { additionalProperties: false } as const;

export const VswitchSpecSchema = Type.Object({ id: Id, vpcId: Id, cidr: Type.String({ pattern: cidrPattern }) }, strict);

export const HostSpecSchema = Type.Object(
  {
    id: Id,
    vcpus: Type.Integer({ minimum: 1 }),
    memoryGiB: Gib,
    numaNodes: Type.Integer({ minimum: 1, maximum: 64 }),
    /** Absent on a new host: Available; absent on a known host: its state is left as it is. */
    state: Type.Optional(Type.Enum([...hostStates])),
    dedicatedHostId: Type.Optional(Id),
    /** The DeH's owner (default `default`); only with dedicatedHostId. */
    account: Type.Optional(AccountName),
    /** Instance families the DeH accepts (default: all); only with dedicatedHostId. */
    allowedFamilies: Type.Optional(Type.Array(Id)),
  },
  strict,
);

export const ZoneSpecSchema = Type.Object(
  { id: Id, vswitches: Type.Optional(Type.Array(VswitchSpecSchema)), hosts: Type.Optional(Type.Array(HostSpecSchema)) },
  strict,
);

export const RegionSpecSchema = Type.Object({ id: Id, zones: Type.Optional(Type.Array(ZoneSpecSchema)) }, strict);

export const InstanceTypeSpecSchema = Type.Object(
  { id: Id, family: Id, vcpus: Type.Integer({ minimum: 1 }), memoryGiB: Gib },
  strict,
);

export const DiskSpecSchema = Type.Object(
  {
    id: Id,
    kind: Type.Enum([...diskKinds]),
    category: Type.Enum([...diskCategories]),
    /** Default PL1. */
    performanceLevel: Type.Optional(Type.Enum([...performanceLevels])),
    sizeGiB: Type.Integer({ minimum: 1 }),
    /** MiB of seeded pseudo-random data in the new backing file (default 0). */
    fillMiB: Type.Optional(Type.Integer({ minimum: 0 })),
  },
  strict,
);

export const InstanceSpecSchema = Type.Object(
  {
    id: Id,
    /** Default `default`. */
    account: Type.Optional(AccountName),
    host: Id,
    type: Id,
    vswitch: Id,
    /** Default Running. */
    status: Type.Optional(Type.Enum([...declarableStatuses])),
    /** Pin to this NUMA node; by default the instance keeps its node or gets the freest that fits. */
    numaNode: Type.Optional(Type.Integer({ minimum: 0 })),
    disks: Type.Optional(Type.Array(DiskSpecSchema)),
  },
  strict,
);

export const FleetSpecSchema = Type.Object(
  {
    regions: Type.Optional(Type.Array(RegionSpecSchema)),
    instanceTypes: Type.Optional(Type.Array(InstanceTypeSpecSchema)),
    instances: Type.Optional(Type.Array(InstanceSpecSchema)),
  },
  strict,
);

export type FleetSpec = Type.Static<typeof FleetSpecSchema>;

const compiled = Compile(FleetSpecSchema);

/** One problem in a fleet file, at `path` (`regions[0].zones[1].hosts[2].vcpus`). */
export interface FleetIssue {
  readonly path: string;
  readonly message: string;
}

/** A fleet file that cannot be applied as written; `issues` lists every problem found. */
export class FleetValidationError extends AppError {
  readonly issues: readonly FleetIssue[];

  constructor(issues: readonly FleetIssue[]) {
    const shown = issues.slice(0, 20).map((i) => `${i.path}: ${i.message}`);
    if (issues.length > shown.length) shown.push(`... and ${issues.length - shown.length} more`);
    super('InvalidParameter', { name: 'fleet', reason: shown.join('; ') });
    this.issues = issues;
  }
}

/** The file after validation: flat lists with defaults filled in and memory in MiB. */
export interface FleetPlan {
  readonly regions: readonly { readonly id: string; readonly path: string }[];
  readonly zones: readonly { readonly id: string; readonly regionId: string; readonly path: string }[];
  readonly vswitches: readonly PlannedVswitch[];
  readonly hosts: readonly PlannedHost[];
  readonly instanceTypes: readonly PlannedInstanceType[];
  readonly instances: readonly PlannedInstance[];
  readonly disks: readonly PlannedDisk[];
}

export interface PlannedVswitch {
  readonly id: string;
  readonly zoneId: string;
  readonly vpcId: string;
  readonly cidr: string;
  readonly path: string;
}

export interface PlannedHost {
  readonly id: string;
  readonly zoneId: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly numaNodes: number;
  readonly state: (typeof hostStates)[number] | undefined;
  readonly dedicatedHostId: string | null;
  /** Owner account name; set exactly when dedicatedHostId is. */
  readonly accountName: string | null;
  readonly allowedFamilies: readonly string[] | null;
  readonly path: string;
}

export interface PlannedInstanceType {
  readonly id: string;
  readonly family: string;
  readonly vcpus: number;
  readonly memoryMib: number;
  readonly path: string;
}

export interface PlannedInstance {
  readonly id: string;
  readonly accountName: string;
  readonly hostId: string;
  readonly typeId: string;
  readonly vswitchId: string;
  readonly status: (typeof declarableStatuses)[number];
  readonly numaNode: number | undefined;
  readonly path: string;
}

export interface PlannedDisk {
  readonly id: string;
  readonly instanceId: string;
  readonly deviceIndex: number;
  readonly kind: (typeof diskKinds)[number];
  readonly category: (typeof diskCategories)[number];
  readonly performanceLevel: (typeof performanceLevels)[number];
  readonly sizeGib: number;
  readonly fillMib: number;
  readonly path: string;
}

export const defaultAccountName = 'default';

/** Parse fleet.yaml text; a syntax error names its line and column. */
export function parseFleetYaml(text: string): unknown {
  const doc = parseDocument(text);
  const [first] = doc.errors;
  if (first !== undefined) {
    const at = first.linePos?.[0];
    const where = at === undefined ? '' : `line ${at.line}, column ${at.col}: `;
    const what = (first.message.split('\n')[0] ?? '').replace(/ at line \d+, column \d+:?$/, '');
    throw new FleetValidationError([{ path: '(yaml)', message: `${where}${what} (${first.code})` }]);
  }
  return doc.toJS() as unknown;
}

/** `/instances/3/host` -> `instances[3].host`. */
function toPath(pointer: string, extra?: string): string {
  let out = '';
  for (const part of pointer.split('/').slice(1)) {
    const key = part.replace(/~1/g, '/').replace(/~0/g, '~');
    out += /^\d+$/.test(key) ? `[${key}]` : out === '' ? key : `.${key}`;
  }
  if (extra !== undefined) out += out === '' ? extra : `.${extra}`;
  return out === '' ? '(root)' : out;
}

function describeValue(value: unknown): string {
  if (value === null) return 'null';
  if (Array.isArray(value)) return 'a list';
  if (typeof value === 'string') return JSON.stringify(value.length > 40 ? `${value.slice(0, 40)}...` : value);
  if (typeof value === 'object') return 'a mapping';
  return typeof value === 'number' || typeof value === 'boolean' ? String(value) : typeof value;
}

function valueAt(root: unknown, pointer: string): unknown {
  let at: unknown = root;
  for (const part of pointer.split('/').slice(1)) {
    if (at === null || typeof at !== 'object') return undefined;
    at = (at as Record<string, unknown>)[part];
  }
  return at;
}

/** TypeBox's errors in the file's words; one issue per problem, none for a schema's inner branches. */
function schemaIssues(input: unknown): FleetIssue[] {
  const issues: FleetIssue[] = [];
  for (const error of compiled.Errors(input)) {
    const params = error.params as Record<string, unknown>;
    const got = describeValue(valueAt(input, error.instancePath));
    switch (error.keyword) {
      case 'required':
        for (const name of (params['requiredProperties'] as string[] | undefined) ?? []) {
          issues.push({ path: toPath(error.instancePath, name), message: 'is required' });
        }
        break;
      case 'additionalProperties':
        for (const name of (params['additionalProperties'] as string[] | undefined) ?? []) {
          issues.push({ path: toPath(error.instancePath, name), message: 'is not a field of the fleet file here (a typo?)' });
        }
        break;
      case 'boolean':
        break; // the additionalProperties entry above already names the field
      case 'enum':
        issues.push({ path: toPath(error.instancePath), message: `must be one of ${((params['allowedValues'] as unknown[] | undefined) ?? []).join(', ')}, not ${got}` });
        break;
      case 'type':
        issues.push({ path: toPath(error.instancePath), message: `must be ${String(params['type'])}, not ${got}` });
        break;
      case 'pattern':
        issues.push({ path: toPath(error.instancePath), message: `has an invalid format: ${got}` });
        break;
      default:
        issues.push({ path: toPath(error.instancePath), message: `${error.message}, not ${got}` });
    }
  }
  return issues;
}

function gibToMib(gib: number, path: string, issues: FleetIssue[]): number {
  const mib = gib * mibPerGib;
  if (!Number.isInteger(mib)) issues.push({ path, message: `must be a whole number of MiB (a multiple of 1/1024 GiB), not ${gib}` });
  return Math.round(mib);
}

/** Records ids of one kind and reports a repeat with both places. */
class IdRegistry {
  readonly #first = new Map<string, string>();

  constructor(
    readonly kind: string,
    readonly issues: FleetIssue[],
  ) {}

  add(id: string, path: string): void {
    const first = this.#first.get(id);
    if (first === undefined) this.#first.set(id, path);
    else this.issues.push({ path, message: `duplicate ${this.kind} id ${id} (first at ${first})` });
  }
}

/**
 * Validate a parsed fleet file and flatten it. Throws FleetValidationError listing every issue.
 * References between kinds (an instance's host, type, vswitch) are checked by applyFleet, since
 * they may name what an earlier file put in the database.
 */
export function planFleet(input: unknown): FleetPlan {
  const structural = schemaIssues(input);
  if (structural.length > 0) throw new FleetValidationError(structural);
  const spec = input as FleetSpec;
  const issues: FleetIssue[] = [];
  const ids = {
    region: new IdRegistry('region', issues),
    zone: new IdRegistry('zone', issues),
    vswitch: new IdRegistry('vswitch', issues),
    host: new IdRegistry('host', issues),
    dedicatedHost: new IdRegistry('dedicated host', issues),
    instanceType: new IdRegistry('instance type', issues),
    instance: new IdRegistry('instance', issues),
    disk: new IdRegistry('disk', issues),
  };
  const plan = {
    regions: [] as { id: string; path: string }[],
    zones: [] as { id: string; regionId: string; path: string }[],
    vswitches: [] as PlannedVswitch[],
    hosts: [] as PlannedHost[],
    instanceTypes: [] as PlannedInstanceType[],
    instances: [] as PlannedInstance[],
    disks: [] as PlannedDisk[],
  };

  (spec.regions ?? []).forEach((region, r) => {
    const regionPath = `regions[${r}]`;
    ids.region.add(region.id, `${regionPath}.id`);
    plan.regions.push({ id: region.id, path: regionPath });
    (region.zones ?? []).forEach((zone, z) => {
      const zonePath = `${regionPath}.zones[${z}]`;
      ids.zone.add(zone.id, `${zonePath}.id`);
      plan.zones.push({ id: zone.id, regionId: region.id, path: zonePath });
      (zone.vswitches ?? []).forEach((vsw, v) => {
        const path = `${zonePath}.vswitches[${v}]`;
        ids.vswitch.add(vsw.id, `${path}.id`);
        plan.vswitches.push({ id: vsw.id, zoneId: zone.id, vpcId: vsw.vpcId, cidr: vsw.cidr, path });
      });
      (zone.hosts ?? []).forEach((host, h) => {
        const path = `${zonePath}.hosts[${h}]`;
        ids.host.add(host.id, `${path}.id`);
        if (host.numaNodes > host.vcpus) issues.push({ path: `${path}.numaNodes`, message: `${host.numaNodes} NUMA nodes need at least as many vCPUs (host has ${host.vcpus})` });
        const dedicated = host.dedicatedHostId !== undefined;
        if (dedicated) ids.dedicatedHost.add(host.dedicatedHostId ?? '', `${path}.dedicatedHostId`);
        if (!dedicated && host.account !== undefined) issues.push({ path: `${path}.account`, message: 'only a dedicated host has an owning account: set dedicatedHostId or remove account' });
        if (!dedicated && host.allowedFamilies !== undefined) issues.push({ path: `${path}.allowedFamilies`, message: 'only a dedicated host restricts families: set dedicatedHostId or remove allowedFamilies' });
        plan.hosts.push({
          id: host.id,
          zoneId: zone.id,
          vcpus: host.vcpus,
          memoryMib: gibToMib(host.memoryGiB, `${path}.memoryGiB`, issues),
          numaNodes: host.numaNodes,
          state: host.state,
          dedicatedHostId: host.dedicatedHostId ?? null,
          accountName: dedicated ? (host.account ?? defaultAccountName) : null,
          allowedFamilies: host.allowedFamilies === undefined ? null : [...new Set(host.allowedFamilies)].sort(),
          path,
        });
      });
    });
  });

  (spec.instanceTypes ?? []).forEach((type, t) => {
    const path = `instanceTypes[${t}]`;
    ids.instanceType.add(type.id, `${path}.id`);
    plan.instanceTypes.push({ id: type.id, family: type.family, vcpus: type.vcpus, memoryMib: gibToMib(type.memoryGiB, `${path}.memoryGiB`, issues), path });
  });

  (spec.instances ?? []).forEach((instance, i) => {
    const path = `instances[${i}]`;
    ids.instance.add(instance.id, `${path}.id`);
    plan.instances.push({
      id: instance.id,
      accountName: instance.account ?? defaultAccountName,
      hostId: instance.host,
      typeId: instance.type,
      vswitchId: instance.vswitch,
      status: instance.status ?? 'Running',
      numaNode: instance.numaNode,
      path,
    });
    let systemDisks = 0;
    (instance.disks ?? []).forEach((disk, d) => {
      const diskPath = `${path}.disks[${d}]`;
      ids.disk.add(disk.id, `${diskPath}.id`);
      const fillMib = disk.fillMiB ?? 0;
      if (fillMib > disk.sizeGiB * mibPerGib) issues.push({ path: `${diskPath}.fillMiB`, message: `${fillMib} MiB of data does not fit a ${disk.sizeGiB} GiB disk` });
      if (disk.kind === 'system' && ++systemDisks > 1) issues.push({ path: `${diskPath}.kind`, message: 'an instance has at most one system disk' });
      plan.disks.push({
        id: disk.id,
        instanceId: instance.id,
        deviceIndex: d,
        kind: disk.kind,
        category: disk.category,
        performanceLevel: disk.performanceLevel ?? 'PL1',
        sizeGib: disk.sizeGiB,
        fillMib,
        path: diskPath,
      });
    });
  });

  if (issues.length > 0) throw new FleetValidationError(issues);
  return plan;
}
