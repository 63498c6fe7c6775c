/** Every limit of CreateReplicationJob's settings, just inside and just outside, without a server. */
import assert from 'node:assert/strict';
import { describe, it } from 'node:test';
import type { SourceFacts } from '../core/agent-protocol.ts';
import { isAppError } from '../core/errors.ts';
import { type JobSettings, type JobSettingsInput, applySettings, checkAgainstSource, checkSettings, defaultSettings, parseReplicationParameters } from './replication-job-params.ts';
import { isoUtc } from './validation.ts';

const now = Date.UTC(2026, 5, 1, 12, 0, 0);
const dayMs = 86_400_000;
const gib = 1024 ** 3;
const base: JobSettings = { ...defaultSettings(now, true), name: 'job', imageName: 'image', systemDiskSizeGib: 40 };

function settle(input: JobSettingsInput, start: JobSettings = base): JobSettings {
  const s = applySettings(start, input, now, now);
  checkSettings(s);
  return s;
}

function refused(code: string, field: string | RegExp, work: () => unknown): void {
  assert.throws(work, (err: unknown) => {
    assert.ok(isAppError(err), String(err));
    assert.equal(err.alibabaCode, code);
    assert.match(err.message, typeof field === 'string' ? new RegExp(field.replace(/[.]/g, '\\.')) : field);
    return true;
  });
}

describe('replication job settings', () => {
  it('SystemDiskSize 20–2048 GiB', () => {
    assert.equal(settle({ systemDiskSize: 20 }).systemDiskSizeGib, 20);
    assert.equal(settle({ systemDiskSize: 2048 }).systemDiskSizeGib, 2048);
    refused('InvalidParameter', 'SystemDiskSize', () => settle({ systemDiskSize: 19 }));
    refused('InvalidParameter', 'SystemDiskSize', () => settle({ systemDiskSize: 2049 }));
  });

  it('DataDisk Index 1–16 once each, Size 20–32768 GiB, Index and Size both given', () => {
    assert.equal(settle({ dataDisks: [{ index: 1, size: 20 }, { index: 16, size: 32768 }] }).dataDisks.length, 2);
    refused('InvalidParameter', 'DataDisk.1.Index', () => settle({ dataDisks: [{ index: 0, size: 20 }] }));
    refused('InvalidParameter', 'DataDisk.1.Index', () => settle({ dataDisks: [{ index: 17, size: 20 }] }));
    refused('InvalidParameter', 'DataDisk.1.Size', () => settle({ dataDisks: [{ index: 1, size: 19 }] }));
    refused('InvalidParameter', 'DataDisk.1.Size', () => settle({ dataDisks: [{ index: 1, size: 32769 }] }));
    refused('DataDisk.DuplicateIndex', /index 2/, () => settle({ dataDisks: [{ index: 2, size: 20 }, { index: 2, size: 30 }] }));
    refused('MissingParameter', 'DataDisk.1.Size', () => settle({ dataDisks: [{ index: 1 }] }));
  });

  it('partitions: Device and SizeBytes together, and no more than the disk holds', () => {
    const parts = settle({ systemDiskParts: [{ device: '0_0', sizeBytes: 20 * gib }], systemDiskSize: 20 }).systemDiskParts;
    assert.deepEqual(parts, [{ device: '0_0', sizeBytes: 20 * gib, block: true }]);
    refused('InvalidParameter', 'SystemDiskPart', () => settle({ systemDiskParts: [{ device: '0_0', sizeBytes: 20 * gib + 1 }], systemDiskSize: 20 }));
    refused('InvalidParameter', 'SystemDiskPart.1.Device', () => settle({ systemDiskParts: [{ sizeBytes: 1024 }] }));
    refused('InvalidParameter', 'DataDisk.1.Part', () => settle({ dataDisks: [{ index: 1, size: 20, parts: [{ device: '1_0', sizeBytes: 20 * gib }, { device: '1_1', sizeBytes: 1 }] }] }));
    assert.equal(settle({ dataDisks: [{ index: 1, size: 20, parts: [{ device: '1_0', sizeBytes: 1024, block: false }] }] }).dataDisks[0]?.parts[0]?.block, false);
  });

  it('ScheduledStartTime within 30 days ahead, ValidTime 7 to 90 days after creation, both ISO 8601 UTC', () => {
    assert.equal(settle({ scheduledStartTime: isoUtc(now + 30 * dayMs) }).scheduledStartTimeMs, now + 30 * dayMs);
    refused('InvalidParameter', 'ScheduledStartTime', () => settle({ scheduledStartTime: isoUtc(now + 30 * dayMs + 1000) }));
    refused('InvalidParameter', 'ScheduledStartTime', () => settle({ scheduledStartTime: isoUtc(now - 1000) }));
    refused('InvalidParameter', 'ScheduledStartTime', () => settle({ scheduledStartTime: '2026-06-02 12:00:00' }));
    refused('InvalidParameter', 'ValidTime', () => settle({ validTime: '2026-02-30T00:00:00Z' }));
    assert.equal(settle({ validTime: isoUtc(now + 7 * dayMs) }).validTimeMs, now + 7 * dayMs);
    assert.equal(settle({ validTime: isoUtc(now + 90 * dayMs) }).validTimeMs, now + 90 * dayMs);
    refused('InvalidParameter', 'ValidTime', () => settle({ validTime: isoUtc(now + 7 * dayMs - 1000) }));
    refused('InvalidParameter', 'ValidTime', () => settle({ validTime: isoUtc(now + 90 * dayMs + 1000) }));
    assert.equal(base.validTimeMs, now + 30 * dayMs, 'a job is valid for 30 days by default');
  });

  it('Name, Description and ImageName: 2–128 letters, digits, colons, underscores, hyphens, from a letter, no http(s)://', () => {
    assert.equal(settle({ name: `a${'b'.repeat(127)}` }).name.length, 128);
    assert.equal(settle({ name: 'ok:name_1-x' }).name, 'ok:name_1-x');
    for (const bad of ['a', `a${'b'.repeat(128)}`, '1abc', 'http://x', 'has space', 'dot.ted']) refused('InvalidParameter', 'Name', () => settle({ name: bad }));
    refused('InvalidParameter', 'Description', () => settle({ description: 'x' }));
    refused('InvalidParameter', 'ImageName', () => settle({ imageName: 'https://image' }));
  });

  it('what each TargetType needs', () => {
    refused('MissingParameter', 'ImageName', () => settle({}, { ...base, imageName: '' }));
    refused('MissingParameter', 'SystemDiskSize', () => settle({}, { ...base, systemDiskSizeGib: null }));
    refused('MissingParameter', 'ContainerNamespace', () => settle({ targetType: 'ContainerImage' }));
    assert.equal(settle({ targetType: 'ContainerImage', containerNamespace: 'ns1', containerRepository: 'repo', containerTag: 'CentOS:v1' }).targetType, 'ContainerImage');
    refused('MissingParameter', 'InstanceId', () => settle({ targetType: 'TargetInstance' }));
    refused('InvalidParameter', 'TargetType', () => settle({ targetType: 'Snapshot' }));
  });

  it('NetMode 0 or 2, and 2 needs a VSwitchId', () => {
    assert.equal(settle({ netMode: 2, vSwitchId: 'vsw-1' }).netMode, 2);
    refused('MissingParameter', 'VSwitchId', () => settle({ netMode: 2 }));
    refused('InvalidParameter', 'NetMode', () => settle({ netMode: 1 }));
  });

  it('incremental jobs: Frequency 1–168 h and MaxNumberOfImageToKeep 1–10, required with RunOnce=false, refused without', () => {
    const incremental = { ...base, runOnce: false };
    assert.equal(settle({ frequency: 1, maxNumberOfImageToKeep: 1 }, incremental).frequencyHours, 1);
    assert.equal(settle({ frequency: 168, maxNumberOfImageToKeep: 10 }, incremental).maxImages, 10);
    refused('InvalidParameter', 'Frequency', () => settle({ frequency: 0, maxNumberOfImageToKeep: 1 }, incremental));
    refused('InvalidParameter', 'Frequency', () => settle({ frequency: 169, maxNumberOfImageToKeep: 1 }, incremental));
    refused('InvalidParameter', 'MaxNumberOfImageToKeep', () => settle({ frequency: 1, maxNumberOfImageToKeep: 0 }, incremental));
    refused('InvalidParameter', 'MaxNumberOfImageToKeep', () => settle({ frequency: 1, maxNumberOfImageToKeep: 11 }, incremental));
    refused('MissingParameter', 'Frequency', () => settle({ maxNumberOfImageToKeep: 1 }, incremental));
    refused('MissingParameter', 'MaxNumberOfImageToKeep', () => settle({ frequency: 1 }, incremental));
    refused('InvalidParameter', 'Frequency', () => settle({ frequency: 1 }));
  });

  it('ReplicationParameters: a JSON object of at most 2,048 characters with the SMT keys', () => {
    assert.deepEqual(parseReplicationParameters('{"bandwidth_limit":10,"compress_level":10,"checksum":false}'), { bandwidthLimitMbps: 10, compressLevel: 10, checksum: false });
    const padded = (length: number): string => {
      const head = '{"bandwidth_limit":1';
      return `${head}${' '.repeat(length - head.length - 1)}}`;
    };
    assert.equal(settle({ replicationParameters: padded(2048) }).replicationParameters.length, 2048);
    refused('InvalidParameter', 'ReplicationParameters', () => settle({ replicationParameters: padded(2049) }));
    refused('InvalidParameter', 'ReplicationParameters', () => settle({ replicationParameters: '{"bandwidth":1}' }));
    refused('InvalidParameter', 'ReplicationParameters', () => settle({ replicationParameters: '[1]' }));
    refused('InvalidParameter', 'compress_level', () => settle({ replicationParameters: '{"compress_level":11}' }));
    refused('InvalidParameter', 'bandwidth_limit', () => settle({ replicationParameters: '{"bandwidth_limit":-1}' }));
  });

  it('LicenseType, launch templates, RAM role and ids have their formats', () => {
    assert.equal(settle({ licenseType: 'BYOL' }).licenseType, 'BYOL');
    refused('InvalidParameter', 'LicenseType', () => settle({ licenseType: 'PAYG' }));
    refused('MissingParameter', 'LaunchTemplateId', () => settle({ launchTemplateVersion: '1' }));
    assert.equal(settle({ launchTemplateId: 'lt-bp16jovvln1cgaaq', launchTemplateVersion: '3' }).launchTemplateVersion, '3');
    refused('InvalidParameter', 'LaunchTemplateVersion', () => settle({ launchTemplateId: 'lt-1', launchTemplateVersion: '0' }));
    refused('InvalidParameter', 'InstanceRamRole', () => settle({ instanceRamRole: 'bad role' }));
    refused('InvalidParameter', 'InstanceType', () => settle({ instanceType: 'c6.large' }));
  });
});

describe('settings against the source', () => {
  const facts = (platform: string): SourceFacts => ({
    agentVersion: '1',
    hostname: 'h',
    platform,
    architecture: 'x86_64',
    kernelLevel: 5,
    cores: 2,
    memoryBytes: gib,
    ipv4: [],
    disks: [
      { index: 0, path: '/dev/sda', sizeBytes: 30 * gib, partitionTable: 'mbr', parts: [{ index: 0, offsetBytes: 1024 ** 2, sizeBytes: 29 * gib, type: 'Boot', path: '/dev/sda1' }] },
      { index: 1, path: '/dev/sdb', sizeBytes: 50 * gib, partitionTable: 'none', parts: [{ index: 0, offsetBytes: 0, sizeBytes: 50 * gib, type: 'Normal', path: '/dev/sdb1' }] },
    ],
  });
  const withData = settle({ systemDiskSize: 30, dataDisks: [{ index: 1, size: 50, parts: [{ device: '1_0', sizeBytes: gib }] }], systemDiskParts: [{ device: '0_0', sizeBytes: gib }] });

  it('accepts what the source has', () => {
    checkAgainstSource(withData, 's-1', facts('Debian 12'), 0);
  });

  it('refuses data disk indexes the source lacks, partitions it lacks, disks smaller than the source\'s, and a missing DataDisk for an image', () => {
    refused('ReplicationJobDataDiskIndex.Invalid', /index 2 .* 1/, () => checkAgainstSource({ ...withData, dataDisks: [{ index: 2, sizeGib: 50, parts: [] }] }, 's-1', facts('x'), 0));
    refused('InvalidParameter', 'DataDisk.1.Part.1.Device', () => checkAgainstSource({ ...withData, dataDisks: [{ index: 1, sizeGib: 50, parts: [{ device: '1_3', sizeBytes: 1, block: true }] }] }, 's-1', facts('x'), 0));
    refused('InvalidParameter', 'SystemDiskPart.1.Device', () => checkAgainstSource({ ...withData, systemDiskParts: [{ device: '0_1', sizeBytes: 1, block: true }] }, 's-1', facts('x'), 0));
    refused('InvalidParameter', 'SystemDiskSize', () => checkAgainstSource({ ...withData, systemDiskSizeGib: 29 }, 's-1', facts('x'), 0));
    refused('InvalidParameter', 'DataDisk.1.Size', () => checkAgainstSource({ ...withData, dataDisks: [{ index: 1, sizeGib: 49, parts: [] }] }, 's-1', facts('x'), 0));
    refused('MissingParameter', 'DataDisk', () => checkAgainstSource({ ...withData, dataDisks: [] }, 's-1', facts('x'), 0));
  });

  it('OS migration (JobType 1) only from CentOS 7 or 8', () => {
    checkAgainstSource(withData, 's-1', facts('CentOS Linux 7 (Core)'), 1);
    checkAgainstSource(withData, 's-1', facts('CentOS 8'), 1);
    refused('InvalidOsMigrationType.NotMatched', /Ubuntu 22\.04/, () => checkAgainstSource(withData, 's-1', facts('Ubuntu 22.04'), 1));
  });
});
