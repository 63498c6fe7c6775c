import type { SourceFacts } from '../core/agent-protocol.ts';
import { AppError } from '../core/errors.ts';
import { checkFormat, checkStrictName, parseIsoUtc } from './validation.ts';

const dayMs = 86_400_000;
const gibBytes = 1024 ** 3;

/** CreateReplicationJob's limits (smc-CreateReplicationJob.txt); Modify checks the same ones. */
export const jobLimits = {
  systemDiskGib: { min: 20, max: 2048 },
  dataDiskGib: { min: 20, max: 32768 },
  dataDiskIndex: { min: 1, max: 16 },
  frequencyHours: { min: 1, max: 168 },
  maxImages: { min: 1, max: 10 },
  scheduleAheadMs: 30 * dayMs,
  validAfterCreation: { minMs: 7 * dayMs, maxMs: 90 * dayMs, defaultMs: 30 * dayMs },
  replicationParametersChars: 2048,
  jobsPerAccount: 1000,
} as const;

export const targetTypes = ['Image', 'ContainerImage', 'TargetInstance'] as const;
export type TargetType = (typeof targetTypes)[number];

export interface PartInput {
  readonly device?: string | undefined;
  readonly sizeBytes?: number | undefined;
  readonly block?: boolean | undefined;
}

export interface DataDiskInput {
  readonly index?: number | undefined;
  readonly size?: number | undefined;
  readonly parts?: readonly PartInput[] | undefined;
}

/** The settings Create takes and Modify may change; every field optional (absent = keep or default). */
export interface JobSettingsInput {
  readonly name?: string | undefined;
  readonly description?: string | undefined;
  readonly targetType?: string | undefined;
  readonly scheduledStartTime?: string | undefined;
  readonly validTime?: string | undefined;
  readonly imageName?: string | undefined;
  readonly instanceId?: string | undefined;
  readonly systemDiskSize?: number | undefined;
  readonly vpcId?: string | undefined;
  readonly vSwitchId?: string | undefined;
  readonly replicationParameters?: string | undefined;
  readonly netMode?: number | undefined;
  readonly frequency?: number | undefined;
  readonly maxNumberOfImageToKeep?: number | undefined;
  readonly instanceType?: string | undefined;
  readonly launchTemplateId?: string | undefined;
  readonly launchTemplateVersion?: string | undefined;
  readonly instanceRamRole?: string | undefined;
  readonly containerNamespace?: string | undefined;
  readonly containerRepository?: string | undefined;
  readonly containerTag?: string | undefined;
  readonly licenseType?: string | undefined;
  readonly dataDisks?: readonly DataDiskInput[] | undefined;
  readonly systemDiskParts?: readonly PartInput[] | undefined;
}

export interface StoredPart {
  readonly device: string;
  readonly sizeBytes: number;
  readonly block: boolean;
}

export interface StoredDataDisk {
  readonly index: number;
  readonly sizeGib: number;
  readonly parts: readonly StoredPart[];
}

/** SMT driver settings from ReplicationParameters. */
export interface ReplicationParams {
  /** Mbit/s; 0 = unlimited. */
  readonly bandwidthLimitMbps: number;
  /** 0 = raw, 1–10 compress. */
  readonly compressLevel: number;
  readonly checksum: boolean;
}

/** A job's settings as stored and checked as a whole. */
export interface JobSettings {
  readonly name: string;
  readonly description: string;
  readonly targetType: TargetType;
  readonly scheduledStartTimeMs: number | null;
  readonly validTimeMs: number;
  readonly imageName: string;
  readonly instanceId: string;
  readonly systemDiskSizeGib: number | null;
  readonly systemDiskParts: readonly StoredPart[];
  readonly dataDisks: readonly StoredDataDisk[];
  readonly netMode: number;
  readonly vpcId: string;
  readonly vSwitchId: string;
  readonly replicationParameters: string;
  readonly runOnce: boolean;
  readonly frequencyHours: number | null;
  readonly maxImages: number | null;
  readonly instanceType: string;
  readonly launchTemplateId: string;
  readonly launchTemplateVersion: string;
  readonly instanceRamRole: string;
  readonly licenseType: string;
  readonly containerNamespace: string;
  readonly containerRepository: string;
  readonly containerTag: string;
}

function intInRange(field: string, value: number, range: { min: number; max: number }): number {
  if (!Number.isInteger(value) || value < range.min || value > range.max) {
    throw new AppError('InvalidParameter', { name: field, reason: `must be a whole number from ${range.min} to ${range.max}` });
  }
  return value;
}

function checkParts(field: string, parts: readonly PartInput[]): StoredPart[] {
  return parts.map((part, i) => {
    const name = `${field}.${i + 1}`;
    if ((part.device === undefined) !== (part.sizeBytes === undefined)) {
      throw new AppError('InvalidParameter', { name: `${name}.Device`, reason: `give both ${name}.Device and ${name}.SizeBytes, or neither` });
    }
    if (part.device === undefined || part.sizeBytes === undefined) throw new AppError('MissingParameter', { name: `${name}.Device and ${name}.SizeBytes` });
    checkFormat(`${name}.Device`, part.device, /^\d{1,2}_\d{1,3}$/, 'a device id like 0_1 (disk_partition)');
    if (!Number.isSafeInteger(part.sizeBytes) || part.sizeBytes <= 0) throw new AppError('InvalidParameter', { name: `${name}.SizeBytes`, reason: 'must be a positive whole number of bytes' });
    return { device: part.device, sizeBytes: part.sizeBytes, block: part.block ?? true };
  });
}

function checkDataDisks(disks: readonly DataDiskInput[]): StoredDataDisk[] {
  const seen = new Set<number>();
  return disks.map((disk, i) => {
    const name = `DataDisk.${i + 1}`;
    if (disk.index === undefined) throw new AppError('MissingParameter', { name: `${name}.Index` });
    if (disk.size === undefined) throw new AppError('MissingParameter', { name: `${name}.Size` });
    const index = intInRange(`${name}.Index`, disk.index, jobLimits.dataDiskIndex);
    const sizeGib = intInRange(`${name}.Size`, disk.size, jobLimits.dataDiskGib);
    if (seen.has(index)) throw new AppError('DataDiskDuplicateIndex', { index });
    seen.add(index);
    const parts = checkParts(`${name}.Part`, disk.parts ?? []);
    checkPartsFit(`${name}.Part`, parts, sizeGib);
    return { index, sizeGib, parts };
  });
}

function checkPartsFit(field: string, parts: readonly StoredPart[], sizeGib: number | null): void {
  const total = parts.reduce((sum, p) => sum + p.sizeBytes, 0);
  if (sizeGib !== null && total > sizeGib * gibBytes) {
    throw new AppError('InvalidParameter', { name: `${field}.N.SizeBytes`, reason: `the partitions total ${total} bytes, more than the ${sizeGib} GiB disk` });
  }
}

/** Parse and check ReplicationParameters: a JSON object of at most 2,048 characters with the SMT keys. */
export function parseReplicationParameters(text: string): ReplicationParams {
  const defaults: ReplicationParams = { bandwidthLimitMbps: 0, compressLevel: 0, checksum: true };
  if (text === '') return defaults;
  const field = 'ReplicationParameters';
  if (text.length > jobLimits.replicationParametersChars) throw new AppError('InvalidParameter', { name: field, reason: `must be at most ${jobLimits.replicationParametersChars} characters long` });
  let parsed: unknown;
  try {
    parsed = JSON.parse(text);
  } catch {
    throw new AppError('InvalidParameter', { name: field, reason: 'is not valid JSON' });
  }
  if (typeof parsed !== 'object' || parsed === null || Array.isArray(parsed)) throw new AppError('InvalidParameter', { name: field, reason: 'must be a JSON object' });
  const values = parsed as Record<string, unknown>;
  const unknown = Object.keys(values).find((k) => !['bandwidth_limit', 'compress_level', 'checksum'].includes(k));
  if (unknown !== undefined) throw new AppError('InvalidParameter', { name: field, reason: `has the key ${unknown}; the SMT driver takes bandwidth_limit, compress_level and checksum` });
  const bandwidth = values['bandwidth_limit'] ?? 0;
  const level = values['compress_level'] ?? 0;
  const checksum = values['checksum'] ?? true;
  if (typeof bandwidth !== 'number' || !Number.isInteger(bandwidth) || bandwidth < 0) throw new AppError('InvalidParameter', { name: `${field}.bandwidth_limit`, reason: 'must be a whole number of Mbit/s, 0 for unlimited' });
  if (typeof level !== 'number' || !Number.isInteger(level) || level < 0 || level > 10) throw new AppError('InvalidParameter', { name: `${field}.compress_level`, reason: 'must be a whole number from 0 to 10' });
  if (typeof checksum !== 'boolean') throw new AppError('InvalidParameter', { name: `${field}.checksum`, reason: 'must be true or false' });
  return { bandwidthLimitMbps: bandwidth, compressLevel: level, checksum };
}

/** Defaults for a new job, before its input is laid over them. */
export function defaultSettings(createdAtMs: number, runOnce: boolean): JobSettings {
  return {
    name: '',
    description: '',
    targetType: 'Image',
    scheduledStartTimeMs: null,
    validTimeMs: createdAtMs + jobLimits.validAfterCreation.defaultMs,
    imageName: '',
    instanceId: '',
    systemDiskSizeGib: null,
    systemDiskParts: [],
    dataDisks: [],
    netMode: 0,
    vpcId: '',
    vSwitchId: '',
    replicationParameters: '',
    runOnce,
    frequencyHours: null,
    maxImages: null,
    instanceType: '',
    launchTemplateId: '',
    launchTemplateVersion: '',
    instanceRamRole: '',
    licenseType: '',
    containerNamespace: '',
    containerRepository: '',
    containerTag: '',
  };
}

/**
 * Lay `input` over `base`, checking each given field on its own: formats, ranges, and the times
 * against `nowMs` and the job's creation (ScheduledStartTime within 30 days ahead, ValidTime 7–90
 * days after creation). Rules between fields come after, in checkSettings.
 */
export function applySettings(base: JobSettings, input: JobSettingsInput, nowMs: number, createdAtMs: number): JobSettings {
  const s: { -readonly [K in keyof JobSettings]: JobSettings[K] } = { ...base };
  if (input.name !== undefined) {
    checkStrictName('Name', input.name);
    s.name = input.name;
  }
  if (input.description !== undefined) {
    checkStrictName('Description', input.description);
    s.description = input.description;
  }
  if (input.targetType !== undefined) {
    if (!(targetTypes as readonly string[]).includes(input.targetType)) throw new AppError('InvalidParameter', { name: 'TargetType', reason: `must be one of: ${targetTypes.join(', ')}` });
    s.targetType = input.targetType as TargetType;
  }
  if (input.scheduledStartTime !== undefined) {
    const ms = parseIsoUtc('ScheduledStartTime', input.scheduledStartTime);
    if (ms <= nowMs) throw new AppError('InvalidParameter', { name: 'ScheduledStartTime', reason: 'must be in the future' });
    if (ms > nowMs + jobLimits.scheduleAheadMs) throw new AppError('InvalidParameter', { name: 'ScheduledStartTime', reason: 'must be within 30 days after the current time' });
    s.scheduledStartTimeMs = ms;
  }
  if (input.validTime !== undefined) {
    const ms = parseIsoUtc('ValidTime', input.validTime);
    const { minMs, maxMs } = jobLimits.validAfterCreation;
    if (ms < createdAtMs + minMs || ms > createdAtMs + maxMs) throw new AppError('InvalidParameter', { name: 'ValidTime', reason: 'must be 7 to 90 days after the job was created' });
    if (ms <= nowMs) throw new AppError('InvalidParameter', { name: 'ValidTime', reason: 'must be in the future' });
    s.validTimeMs = ms;
  }
  if (input.imageName !== undefined) {
    checkStrictName('ImageName', input.imageName);
    s.imageName = input.imageName;
  }
  if (input.instanceId !== undefined) {
    checkFormat('InstanceId', input.instanceId, /^i-[A-Za-z0-9-]{1,62}$/, 'an instance id like i-bp1f1dvfto1sigz5xxxx');
    s.instanceId = input.instanceId;
  }
  if (input.systemDiskSize !== undefined) s.systemDiskSizeGib = intInRange('SystemDiskSize', input.systemDiskSize, jobLimits.systemDiskGib);
  if (input.systemDiskParts !== undefined) s.systemDiskParts = checkParts('SystemDiskPart', input.systemDiskParts);
  if (input.dataDisks !== undefined) s.dataDisks = checkDataDisks(input.dataDisks);
  if (input.netMode !== undefined) {
    if (input.netMode !== 0 && input.netMode !== 2) throw new AppError('InvalidParameter', { name: 'NetMode', reason: 'must be 0 (Internet) or 2 (VPC)' });
    s.netMode = input.netMode;
  }
  if (input.vpcId !== undefined) {
    checkFormat('VpcId', input.vpcId, /^vpc-[A-Za-z0-9-]{1,62}$/, 'a VPC id like vpc-bp1vwnn14rqpyiczjxxxx');
    s.vpcId = input.vpcId;
  }
  if (input.vSwitchId !== undefined) {
    checkFormat('VSwitchId', input.vSwitchId, /^vsw-[A-Za-z0-9-]{1,62}$/, 'a vSwitch id like vsw-bp1ddbrxdlrcbim46xxxx');
    s.vSwitchId = input.vSwitchId;
  }
  if (input.replicationParameters !== undefined) {
    parseReplicationParameters(input.replicationParameters);
    s.replicationParameters = input.replicationParameters;
  }
  if (input.frequency !== undefined) s.frequencyHours = intInRange('Frequency', input.frequency, jobLimits.frequencyHours);
  if (input.maxNumberOfImageToKeep !== undefined) s.maxImages = intInRange('MaxNumberOfImageToKeep', input.maxNumberOfImageToKeep, jobLimits.maxImages);
  if (input.instanceType !== undefined) {
    checkFormat('InstanceType', input.instanceType, /^ecs\.[a-z0-9-]+\.[a-z0-9-]+$/, 'an instance type like ecs.c6.large');
    s.instanceType = input.instanceType;
  }
  if (input.launchTemplateId !== undefined) {
    checkFormat('LaunchTemplateId', input.launchTemplateId, /^lt-[A-Za-z0-9]{1,62}$/, 'a launch template id like lt-bp16jovvln1cgaaqxxxx');
    s.launchTemplateId = input.launchTemplateId;
  }
  if (input.launchTemplateVersion !== undefined) {
    checkFormat('LaunchTemplateVersion', input.launchTemplateVersion, /^[1-9]\d{0,9}$/, 'a version number from 1');
    s.launchTemplateVersion = input.launchTemplateVersion;
  }
  if (input.instanceRamRole !== undefined) {
    checkFormat('InstanceRamRole', input.instanceRamRole, /^[A-Za-z0-9.-]{1,64}$/, 'a RAM role name of 1 to 64 letters, digits, periods and hyphens');
    s.instanceRamRole = input.instanceRamRole;
  }
  if (input.licenseType !== undefined) {
    if (input.licenseType !== '' && input.licenseType !== 'BYOL') throw new AppError('InvalidParameter', { name: 'LicenseType', reason: 'must be empty (no license) or BYOL' });
    s.licenseType = input.licenseType;
  }
  if (input.containerNamespace !== undefined) {
    checkFormat('ContainerNamespace', input.containerNamespace, /^[a-z0-9][a-z0-9_-]{1,29}$/, '2 to 30 lower-case letters, digits, underscores and hyphens');
    s.containerNamespace = input.containerNamespace;
  }
  if (input.containerRepository !== undefined) {
    checkFormat('ContainerRepository', input.containerRepository, /^[a-z0-9][a-z0-9._/-]{1,63}$/i, '2 to 64 letters, digits, periods, underscores, slashes and hyphens');
    s.containerRepository = input.containerRepository;
  }
  if (input.containerTag !== undefined) {
    checkFormat('ContainerTag', input.containerTag, /^[A-Za-z0-9_][A-Za-z0-9_.:-]{0,127}$/, '1 to 128 letters, digits, underscores, periods, colons and hyphens');
    s.containerTag = input.containerTag;
  }
  return s;
}

/** Rules between fields: what each TargetType needs, NetMode 2's vSwitch, incremental settings, launch templates. */
export function checkSettings(s: JobSettings): void {
  if (s.targetType === 'Image') {
    if (s.imageName === '') throw new AppError('MissingParameter', { name: 'ImageName (required for TargetType Image)' });
    if (s.systemDiskSizeGib === null) throw new AppError('MissingParameter', { name: 'SystemDiskSize (required for TargetType Image)' });
  }
  if (s.targetType === 'ContainerImage') {
    for (const [field, value] of [['ContainerNamespace', s.containerNamespace], ['ContainerRepository', s.containerRepository], ['ContainerTag', s.containerTag]] as const) {
      if (value === '') throw new AppError('MissingParameter', { name: `${field} (required for TargetType ContainerImage)` });
    }
  }
  if (s.targetType === 'TargetInstance' && s.instanceId === '') throw new AppError('MissingParameter', { name: 'InstanceId (required for TargetType TargetInstance)' });
  if (s.netMode === 2 && s.vSwitchId === '') throw new AppError('MissingParameter', { name: 'VSwitchId (required for NetMode 2)' });
  if (s.runOnce) {
    if (s.frequencyHours !== null) throw new AppError('InvalidParameter', { name: 'Frequency', reason: 'applies only to incremental jobs (RunOnce=false)' });
    if (s.maxImages !== null) throw new AppError('InvalidParameter', { name: 'MaxNumberOfImageToKeep', reason: 'applies only to incremental jobs (RunOnce=false)' });
  } else {
    if (s.frequencyHours === null) throw new AppError('MissingParameter', { name: 'Frequency (required when RunOnce is false)' });
    if (s.maxImages === null) throw new AppError('MissingParameter', { name: 'MaxNumberOfImageToKeep (required when RunOnce is false)' });
  }
  if (s.launchTemplateVersion !== '' && s.launchTemplateId === '') throw new AppError('MissingParameter', { name: 'LaunchTemplateId (LaunchTemplateVersion was given)' });
  checkPartsFit('SystemDiskPart', s.systemDiskParts, s.systemDiskSizeGib);
}

const gib = (bytes: number): number => Math.ceil(bytes / gibBytes);

/**
 * Rules against what the agent reported: data disk indexes the source has, partition devices
 * that exist, destination disks no smaller than the source's, and what OS migration supports.
 */
export function checkAgainstSource(s: JobSettings, sourceId: string, facts: SourceFacts, jobType: number): void {
  const system = facts.disks[0];
  const dataIndexes = facts.disks.filter((d) => d.index > 0).map((d) => d.index);
  if (system !== undefined && s.systemDiskSizeGib !== null && s.systemDiskSizeGib * gibBytes < system.sizeBytes) {
    throw new AppError('InvalidParameter', { name: 'SystemDiskSize', reason: `must hold the source system disk (${gib(system.sizeBytes)} GiB)` });
  }
  checkDevices('SystemDiskPart', s.systemDiskParts, system?.parts.map((p) => `0_${p.index}`) ?? []);
  if (s.targetType === 'Image' && dataIndexes.length > 0 && s.dataDisks.length === 0) {
    throw new AppError('MissingParameter', { name: `DataDisk (required for TargetType Image: the source has data disks ${dataIndexes.join(', ')})` });
  }
  s.dataDisks.forEach((disk, i) => {
    const source = facts.disks.find((d) => d.index === disk.index && d.index > 0);
    if (source === undefined) throw new AppError('ReplicationJobDataDiskIndexInvalid', { index: disk.index, sourceId, available: dataIndexes.join(', ') || 'none' });
    if (disk.sizeGib * gibBytes < source.sizeBytes) throw new AppError('InvalidParameter', { name: `DataDisk.${i + 1}.Size`, reason: `must hold source data disk ${disk.index} (${gib(source.sizeBytes)} GiB)` });
    checkDevices(`DataDisk.${i + 1}.Part`, disk.parts, source.parts.map((p) => `${disk.index}_${p.index}`));
  });
  if (jobType === 1) checkOsMigration(facts.platform);
}

function checkDevices(field: string, parts: readonly StoredPart[], devices: readonly string[]): void {
  parts.forEach((part, i) => {
    if (!devices.includes(part.device)) {
      throw new AppError('InvalidParameter', { name: `${field}.${i + 1}.Device`, reason: `${part.device} is not a partition of the source disk; its partitions are ${devices.join(', ') || 'none'}` });
    }
  });
}

/** OS migration (JobType 1) moves CentOS 7 and 8 to Alibaba Cloud Linux, as SMC offers it. */
export const osMigrationSources = ['CentOS 7', 'CentOS 8'] as const;

function checkOsMigration(platform: string): void {
  const supported = osMigrationSources.some((os) => new RegExp(`^${os.replace(' ', '( Linux|)? ')}\\b`, 'i').test(platform));
  if (!supported) throw new AppError('InvalidOsMigrationTypeNotMatched', { sourceOsType: platform || 'unknown', targetOsType: 'Alibaba Cloud Linux', supported: osMigrationSources.join(', ') });
}
