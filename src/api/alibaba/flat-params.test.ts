import assert from 'node:assert/strict';
import { stringify } from 'node:querystring';
import { test } from 'node:test';
import openapiUtil from '@alicloud/openapi-util';
import fc from 'fast-check';
import { Type, type Static, type TObject } from 'typebox';
import { decodeFlatParams, defaultFlatLimits, parseJsonParam, type FlatParamsResult } from './flat-params.ts';
import { decodeParams, popEncode } from '../common/percent-encoding.ts';

// Schemas shaped like the SMC / ENS request models of smc-api.md §2 and ens-api.md §3-§6.
const Part = Type.Object({ Device: Type.String(), SizeBytes: Type.Integer(), Block: Type.Boolean() });
const CreateJob = Type.Object({
  SourceId: Type.String(),
  Name: Type.Optional(Type.String({ maxLength: 20 })),
  TargetType: Type.Optional(Type.Union([Type.Literal('Image'), Type.Literal('ContainerImage'), Type.Literal('TargetInstance')])),
  Frequency: Type.Optional(Type.Integer({ minimum: 1, maximum: 168 })),
  NetMode: Type.Optional(Type.Integer()),
  RunOnce: Type.Optional(Type.Boolean()),
  JobId: Type.Optional(Type.Array(Type.String(), { maxItems: 50 })),
  Tag: Type.Optional(Type.Array(Type.Object({ Key: Type.String(), Value: Type.Optional(Type.String()) }))),
  DataDisk: Type.Optional(Type.Array(Type.Object({ Index: Type.Integer(), Size: Type.Optional(Type.Integer({ minimum: 20 })), Part: Type.Optional(Type.Array(Part)) }))),
  SystemDiskPart: Type.Optional(Type.Array(Part)),
  Disks: Type.Optional(Type.Object({
    System: Type.Optional(Type.Object({ Size: Type.Integer(), LVM: Type.Optional(Type.Boolean()), Part: Type.Optional(Type.Array(Type.Object({ Path: Type.String(), SizeBytes: Type.Integer() }))) })),
    Data: Type.Optional(Type.Array(Type.Object({ DiskId: Type.String(), Size: Type.Integer(), Part: Type.Optional(Type.Array(Type.Object({ SizeBytes: Type.Integer() }))) }))),
  })),
  ReplicationParameters: Type.Optional(Type.String()),
});
const EventType = Type.Union(['Instance:SystemFailure.Redeploy', 'Instance:SystemUpgrade.Migrate', 'Instance:SystemMaintenance.Redeploy'].map((t) => Type.Literal(t)));
const DescribeHistoryEvents = Type.Object({
  EventTypes: Type.Array(EventType, { minItems: 1 }),
  ResourceIds: Type.Optional(Type.Array(Type.String())),
  PageNumber: Type.Optional(Type.Integer({ minimum: 1 })),
  PageSize: Type.Optional(Type.Integer({ minimum: 1, maximum: 50 })),
});
const BatchMigrate = Type.Object({
  EventInfos: Type.Array(Type.Object({
    EventId: Type.String(),
    ResourceId: Type.String(),
    OpsType: Type.Union([Type.Literal('immediate'), Type.Literal('scheduled')]),
    PlanTime: Type.Optional(Type.Integer()),
    DataPolicy: Type.Optional(Type.String()),
  }), { minItems: 1 }),
});
const DescribeInstances = Type.Object({
  InstanceIds: Type.Optional(Type.Array(Type.String())),
  ServiceStatus: Type.Optional(Type.Array(Type.String())),
  RegionId: Type.Optional(Type.String()),
});

/** Decode a wire query string the way the front door will: percent-decoding, then the schema. */
function fromWire<S extends TObject>(schema: S, wire: string): FlatParamsResult<Static<S>> {
  const params = decodeParams(wire);
  assert.ok(params.ok, params.ok ? '' : params.reason);
  return decodeFlatParams(schema, params.params);
}

function decoded<T>(result: FlatParamsResult<T>): T {
  assert.ok(result.ok, result.ok ? '' : `${result.code} ${result.field}: ${result.reason}`);
  return result.value;
}

test('the pop-core wire of alibaba-rpc.md §7 decodes into lists, object lists and nested lists', () => {
  const wire = 'Action=CreateReplicationJob&DataDisk.1.Index=1&DataDisk.1.Part.1.Block=true&DataDisk.1.Part.1.Device=0_1&DataDisk.1.Part.1.SizeBytes=1024'
    + '&DataDisk.1.Size=100&Format=JSON&JobId.1=j-1&JobId.2=j-2&Name=x%21%27%28%29%2A~&RegionId=cn-hangzhou'
    + '&ReplicationParameters=%7B%22bandwidth_limit%22%3A100%7D&SignatureMethod=HMAC-SHA1&SourceId=s-1&Tag.1.Key=env&Tag.1.Value=a%20b&Version=2019-06-01';
  assert.deepEqual(decoded(fromWire(CreateJob, wire)), {
    SourceId: 's-1',
    Name: "x!'()*~",
    JobId: ['j-1', 'j-2'],
    Tag: [{ Key: 'env', Value: 'a b' }],
    DataDisk: [{ Index: 1, Size: 100, Part: [{ Device: '0_1', SizeBytes: 1024, Block: true }] }],
    ReplicationParameters: '{"bandwidth_limit":100}',
  });
});

test('the generated-SDK wire of §7 decodes dotted plain objects (Disks.System.Size, Disks.Data.1.DiskId)', () => {
  const wire = 'DataDisk.1.Index=1&DataDisk.1.Part.1.Block=true&DataDisk.1.Part.1.Device=0_1&DataDisk.1.Part.1.SizeBytes=1024'
    + '&Disks.Data.1.DiskId=d-1&Disks.Data.1.Part.1.SizeBytes=2048&Disks.Data.1.Size=50&Disks.System.LVM=false&Disks.System.Part.1.Path=%2Fboot'
    + '&Disks.System.Part.1.SizeBytes=512&Disks.System.Size=40&SourceId=s-1&SystemDiskPart.1.Block=false&SystemDiskPart.1.Device=0_0&SystemDiskPart.1.SizeBytes=99&Tag.1.Key=env';
  assert.deepEqual(decoded(fromWire(CreateJob, wire)), {
    SourceId: 's-1',
    DataDisk: [{ Index: 1, Part: [{ Device: '0_1', SizeBytes: 1024, Block: true }] }],
    Disks: {
      System: { Size: 40, LVM: false, Part: [{ Path: '/boot', SizeBytes: 512 }] },
      Data: [{ DiskId: 'd-1', Size: 50, Part: [{ SizeBytes: 2048 }] }],
    },
    SystemDiskPart: [{ Device: '0_0', SizeBytes: 99, Block: false }],
    Tag: [{ Key: 'env' }],
  });
});

test('the ENS wire of §7 decodes comma-joined and JSON-text lists', () => {
  const events = fromWire(DescribeHistoryEvents, 'EventTypes=Instance%3ASystemUpgrade.Migrate%2CInstance%3ASystemFailure.Redeploy&PageNumber=1');
  assert.deepEqual(decoded(events), { EventTypes: ['Instance:SystemUpgrade.Migrate', 'Instance:SystemFailure.Redeploy'], PageNumber: 1 });
  const instances = fromWire(DescribeInstances, 'InstanceIds=%5B%22i-1%22%2C%22i-2%22%5D&ServiceStatus=%5B%22Running%22%5D');
  assert.deepEqual(decoded(instances), { InstanceIds: ['i-1', 'i-2'], ServiceStatus: ['Running'] });
  const batch = fromWire(BatchMigrate, 'EventInfos=%5B%7B%22DataPolicy%22%3A%22abandon%22%2C%22EventId%22%3A%22e-1%22%2C%22OpsType%22%3A%22scheduled%22%2C%22PlanTime%22%3A1742452232000%2C%22ResourceId%22%3A%22i-1%22%7D%5D');
  assert.deepEqual(decoded(batch), { EventInfos: [{ DataPolicy: 'abandon', EventId: 'e-1', OpsType: 'scheduled', PlanTime: 1742452232000, ResourceId: 'i-1' }] });
});

test('the repeat-list form of pop-core callers works for the same ENS list params', () => {
  const result = fromWire(DescribeHistoryEvents, 'EventTypes.1=Instance%3ASystemUpgrade.Migrate&EventTypes.2=Instance%3ASystemFailure.Redeploy&ResourceIds.1=i-1');
  assert.deepEqual(decoded(result), { EventTypes: ['Instance:SystemUpgrade.Migrate', 'Instance:SystemFailure.Redeploy'], ResourceIds: ['i-1'] });
});

test('a comma list trims items, an empty value is an empty list, and one value is a one-item list', () => {
  assert.deepEqual(decoded(decodeFlatParams(DescribeInstances, { InstanceIds: ' i-1 , i-2 ' })).InstanceIds, ['i-1', 'i-2']);
  assert.deepEqual(decoded(decodeFlatParams(DescribeInstances, { InstanceIds: '' })).InstanceIds, []);
  assert.deepEqual(decoded(decodeFlatParams(CreateJob, { SourceId: 's', JobId: 'j-1' })).JobId, ['j-1']);
  const numbers = Type.Object({ Sizes: Type.Array(Type.Integer()) });
  assert.deepEqual(decoded(decodeFlatParams(numbers, { Sizes: '1,2,30' })), { Sizes: [1, 2, 30] });
});

test('indexes sort numerically, so .10 follows .9', () => {
  const params: Record<string, string> = { SourceId: 's' };
  for (let i = 1; i <= 12; i += 1) params[`JobId.${i}`] = `j-${i}`;
  assert.deepEqual(decoded(decodeFlatParams(CreateJob, params)).JobId, Array.from({ length: 12 }, (_, i) => `j-${i + 1}`));
});

test('gaps in a list are closed up and reported', () => {
  const result = decodeFlatParams(CreateJob, { SourceId: 's', 'JobId.2': 'b', 'JobId.5': 'c', 'Tag.1.Key': 'k', 'Tag.3.Key': 'l' });
  assert.ok(result.ok);
  assert.deepEqual(result.value.JobId, ['b', 'c']);
  assert.deepEqual(result.value.Tag, [{ Key: 'k' }, { Key: 'l' }]);
  assert.deepEqual(result.gaps, ['JobId.1', 'JobId.3-4', 'Tag.2']);
});

test('an error inside a list item names the param as sent, even after gaps moved the item', () => {
  const result = decodeFlatParams(CreateJob, { SourceId: 's', 'DataDisk.3.Index': '1', 'DataDisk.3.Size': 'abc' });
  assert.deepEqual(result, { ok: false, code: 'InvalidParameter', field: 'DataDisk.3.Size', reason: 'is not a number' });
  const nested = decodeFlatParams(CreateJob, { SourceId: 's', 'DataDisk.1.Index': '1', 'DataDisk.1.Part.2.Device': 'd', 'DataDisk.1.Part.2.Block': 'true', 'DataDisk.1.Part.2.SizeBytes': '1.5' });
  assert.deepEqual(nested, { ok: false, code: 'InvalidParameter', field: 'DataDisk.1.Part.2.SizeBytes', reason: 'must be a whole number' });
});

test('a missing required field is MissingParameter in wire form', () => {
  assert.deepEqual(decodeFlatParams(CreateJob, {}), { ok: false, code: 'MissingParameter', field: 'SourceId', reason: 'is missing' });
  assert.deepEqual(decodeFlatParams(CreateJob, { SourceId: 's', 'DataDisk.1.Index': '1', 'DataDisk.2.Size': '40' }), {
    ok: false, code: 'MissingParameter', field: 'DataDisk.2.Index', reason: 'is missing',
  });
  assert.deepEqual(decodeFlatParams(CreateJob, { SourceId: 's', 'Disks.System.LVM': 'true' }), {
    ok: false, code: 'MissingParameter', field: 'Disks.System.Size', reason: 'is missing',
  });
  // An empty number is "not given", so a required one is missing rather than "not a number".
  const required = Type.Object({ PlanTime: Type.Integer() });
  assert.deepEqual(decodeFlatParams(required, { PlanTime: '' }), { ok: false, code: 'MissingParameter', field: 'PlanTime', reason: 'is missing' });
});

test('bounds and enums are explained: too small, too large, too long, one of', () => {
  const check = (params: Record<string, string>) => decodeFlatParams(CreateJob, { SourceId: 's', ...params });
  assert.deepEqual(check({ Frequency: '0' }), { ok: false, code: 'InvalidParameter', field: 'Frequency', reason: 'is too small; the minimum is 1' });
  assert.deepEqual(check({ Frequency: '169' }), { ok: false, code: 'InvalidParameter', field: 'Frequency', reason: 'is too large; the maximum is 168' });
  assert.deepEqual(check({ Name: 'x'.repeat(21) }), { ok: false, code: 'InvalidParameter', field: 'Name', reason: 'is too long; at most 20 characters are accepted' });
  assert.deepEqual(check({ TargetType: 'Disk' }), { ok: false, code: 'InvalidParameter', field: 'TargetType', reason: 'must be one of: Image, ContainerImage, TargetInstance' });
  assert.deepEqual(check({ RunOnce: 'yes' }), { ok: false, code: 'InvalidParameter', field: 'RunOnce', reason: 'must be true or false' });
  assert.deepEqual(check({ Frequency: 'ten' }), { ok: false, code: 'InvalidParameter', field: 'Frequency', reason: 'is not a number' });
  const many = Object.fromEntries(Array.from({ length: 51 }, (_, i) => [`JobId.${i + 1}`, 'j']));
  assert.deepEqual(check(many), { ok: false, code: 'InvalidParameter', field: 'JobId', reason: 'has too many items; at most 50 are accepted' });
});

test('numbers and booleans are coerced from text; integers beyond 2^53 are refused, not rounded', () => {
  const value = decoded(decodeFlatParams(CreateJob, { SourceId: 's', Frequency: '12', NetMode: '-2', RunOnce: 'TRUE' }));
  assert.equal(value.Frequency, 12);
  assert.equal(value.NetMode, -2);
  assert.equal(value.RunOnce, true);
  assert.equal(decoded(decodeFlatParams(CreateJob, { SourceId: 's', NetMode: '9007199254740991' })).NetMode, 9007199254740991);
  for (const huge of ['9007199254740993', '1e20', '1e400']) {
    assert.deepEqual(decodeFlatParams(CreateJob, { SourceId: 's', NetMode: huge }), { ok: false, code: 'InvalidParameter', field: 'NetMode', reason: 'is out of range' }, huge);
  }
});

test('JSON-valued string params stay strings; parseJsonParam reads them when a handler wants the structure', () => {
  const value = decoded(decodeFlatParams(CreateJob, { SourceId: 's', ReplicationParameters: '{"bandwidth_limit":100}', Name: '[1,2]' }));
  assert.equal(value.ReplicationParameters, '{"bandwidth_limit":100}');
  assert.equal(value.Name, '[1,2]');
  assert.deepEqual(parseJsonParam('ReplicationParameters', value.ReplicationParameters ?? ''), { ok: true, value: { bandwidth_limit: 100 } });
  assert.deepEqual(parseJsonParam('ReplicationParameters', '{oops'), { ok: false, code: 'InvalidParameter', field: 'ReplicationParameters', reason: 'is not valid JSON' });
});

test('errors inside a JSON list name the param and say which item and field', () => {
  const badTime = decodeFlatParams(BatchMigrate, { EventInfos: '[{"EventId":"e-1","ResourceId":"i-1","OpsType":"scheduled","PlanTime":"soon"}]' });
  assert.deepEqual(badTime, { ok: false, code: 'InvalidParameter', field: 'EventInfos', reason: 'item 1 PlanTime is not a number' });
  const missing = decodeFlatParams(BatchMigrate, { EventInfos: '[{"EventId":"e-1","ResourceId":"i-1","OpsType":"immediate"},{"ResourceId":"i-2","OpsType":"immediate"}]' });
  assert.deepEqual(missing, { ok: false, code: 'InvalidParameter', field: 'EventInfos', reason: 'item 2 EventId is missing' });
  const badType = decodeFlatParams(DescribeHistoryEvents, { EventTypes: 'Instance:SystemUpgrade.Migrate,Disk:Stalled' });
  assert.ok(!badType.ok);
  assert.equal(badType.field, 'EventTypes');
  assert.match(badType.reason, /^item 2 must be one of: Instance:SystemFailure.Redeploy, /);
  assert.deepEqual(decodeFlatParams(BatchMigrate, { EventInfos: '[{"EventId":' }), { ok: false, code: 'InvalidParameter', field: 'EventInfos', reason: 'is not valid JSON' });
});

test('numeric text inside JSON is coerced like wire text, and undeclared JSON fields are dropped', () => {
  const result = decoded(decodeFlatParams(BatchMigrate, { EventInfos: '[{"EventId":"e-1","ResourceId":"i-1","OpsType":"scheduled","PlanTime":"1742452232000","__proto__":{"x":1},"Extra":1}]' }));
  assert.deepEqual(result, { EventInfos: [{ EventId: 'e-1', ResourceId: 'i-1', OpsType: 'scheduled', PlanTime: 1742452232000 }] });
  assert.equal(Object.getPrototypeOf(result.EventInfos[0]), Object.prototype);
});

test('a plain object may arrive as JSON text; as pop-core\'s "[object Object]" it is refused with a hint', () => {
  const json = decoded(decodeFlatParams(CreateJob, { SourceId: 's', Disks: '{"System":{"Size":"40"}}' }));
  assert.deepEqual(json.Disks, { System: { Size: 40 } });
  const popCore = decodeFlatParams(CreateJob, { SourceId: 's', Disks: '[object Object]' });
  assert.ok(!popCore.ok);
  assert.equal(popCore.field, 'Disks');
  assert.match(popCore.reason, /Disks\.<Field>/);
});

test('object lists need JSON or indexed params; a list given both ways is refused', () => {
  const tags = decodeFlatParams(CreateJob, { SourceId: 's', Tag: 'env' });
  assert.ok(!tags.ok);
  assert.match(tags.reason, /JSON array or Tag\.N/);
  const both = decodeFlatParams(CreateJob, { SourceId: 's', JobId: 'j-1', 'JobId.1': 'j-2' });
  assert.ok(!both.ok);
  assert.equal(both.field, 'JobId');
});

test('list indexes must be positive integers within the limit', () => {
  for (const key of ['JobId.0', 'JobId.01', 'JobId.x', 'JobId.-1', 'JobId.']) {
    const result = decodeFlatParams(CreateJob, { SourceId: 's', [key]: 'j' });
    assert.ok(!result.ok, key);
    assert.equal(result.field, key);
  }
  assert.ok(decodeFlatParams(CreateJob, { SourceId: 's', 'Tag.1000.Key': 'k' }).ok);
  const over = decodeFlatParams(CreateJob, { SourceId: 's', 'Tag.1001.Key': 'k' });
  assert.deepEqual(over, { ok: false, code: 'InvalidParameter', field: 'Tag.1001', reason: 'has index 1001; at most 1000 items are accepted' });
});

test('unknown params are ignored: protocol params silently, others listed', () => {
  const result = decodeFlatParams(CreateJob, {
    SourceId: 's', Action: 'CreateReplicationJob', Version: '2019-06-01', AccessKeyId: 'k', Signature: 'x', SignatureNonce: 'n',
    Timestamp: 't', Format: 'JSON', RegionId: 'cn-hangzhou', OwnerId: '1', ResourceOwnerAccount: 'a', SecurityToken: 'st',
    Foo: '1', 'Bar.1': '2', 'Tag.1.Key': 'k', 'Tag.1.Colour': 'red', 'SourceId.1': 'x',
  });
  assert.ok(result.ok);
  assert.deepEqual(result.value, { SourceId: 's', Tag: [{ Key: 'k' }] });
  assert.deepEqual([...result.ignored].sort(), ['Bar', 'SourceId.1', 'Tag.1.Colour', 'Foo'].sort());
  // A schema that declares RegionId gets it.
  assert.deepEqual(decoded(decodeFlatParams(DescribeInstances, { RegionId: 'cn-hangzhou', Action: 'DescribeInstances' })), { RegionId: 'cn-hangzhou' });
});

test('abuse limits: too many params, too long, too deep are InvalidParameter', () => {
  const limits = { ...defaultFlatLimits, maxParams: 5, maxTotalChars: 100, maxDepth: 4 };
  const many = Object.fromEntries(Array.from({ length: 6 }, (_, i) => [`P${i}`, '1']));
  assert.deepEqual(decodeFlatParams(CreateJob, many, limits), { ok: false, code: 'InvalidParameter', field: '*', reason: 'the request has 6 params; at most 5 are accepted' });
  const long = decodeFlatParams(CreateJob, { SourceId: 'x'.repeat(101) }, limits);
  assert.ok(!long.ok);
  assert.equal(long.field, '*');
  const deep = decodeFlatParams(CreateJob, { 'a.b.c.d.e': '1' }, limits);
  assert.deepEqual(deep, { ok: false, code: 'InvalidParameter', field: 'a.b.c.d.e', reason: 'nests 5 levels deep; at most 4 are accepted' });
  const deepJson = decodeFlatParams(BatchMigrate, { EventInfos: `${'['.repeat(11)}${']'.repeat(11)}` });
  assert.deepEqual(deepJson, { ok: false, code: 'InvalidParameter', field: 'EventInfos', reason: 'nests JSON deeper than 10 levels' });
  const bigList = decodeFlatParams(DescribeInstances, { InstanceIds: Array.from({ length: 1001 }, () => 'i').join(',') });
  assert.ok(!bigList.ok);
  assert.equal(bigList.field, 'InstanceIds');
  // Brackets inside JSON strings do not count as nesting.
  assert.ok(decodeFlatParams(DescribeInstances, { InstanceIds: `["${'['.repeat(50)}\\"${'{'.repeat(50)}"]` }).ok);
});

// Round trip through the real SDK flattener: random requests, flattened by @alicloud/openapi-util
// query() (what the generated SDKs call), put on the wire the way pop-core (RFC 3986) and the tea
// runtime (Node querystring) escape it, and decoded back.
const RoundTrip = Type.Object({
  SourceId: Type.String(),
  Frequency: Type.Optional(Type.Integer()),
  Ratio: Type.Optional(Type.Number()),
  RunOnce: Type.Optional(Type.Boolean()),
  JobId: Type.Optional(Type.Array(Type.String())),
  Tag: Type.Optional(Type.Array(Type.Object({ Key: Type.String(), Value: Type.Optional(Type.String()) }))),
  DataDisk: CreateJob.properties.DataDisk,
  Disks: Type.Optional(Type.Object({
    System: Type.Object({ Size: Type.Integer(), LVM: Type.Optional(Type.Boolean()) }),
    Data: Type.Optional(Type.Array(Type.Object({ DiskId: Type.String(), Size: Type.Integer() }))),
  })),
  ReplicationParameters: Type.Optional(Type.String()),
});

const text = fc.string({ unit: 'grapheme', maxLength: 12 });
const long = fc.maxSafeInteger();
// The indexed form cannot say "empty list": an SDK sends nothing for [], so lists here have items.
const list = <T>(item: fc.Arbitrary<T>) => fc.array(item, { minLength: 1, maxLength: 12 });
const part = fc.record({ Device: text, SizeBytes: long, Block: fc.boolean() }, { noNullPrototype: true });
const roundTripValue = fc.record(
  {
    SourceId: text,
    Frequency: long,
    Ratio: fc.double({ noNaN: true, noDefaultInfinity: true }).filter((x) => !Object.is(x, -0)),
    RunOnce: fc.boolean(),
    JobId: list(text),
    Tag: list(fc.record({ Key: text, Value: text }, { requiredKeys: ['Key'], noNullPrototype: true })),
    DataDisk: list(fc.record({ Index: long, Size: fc.integer({ min: 20 }), Part: list(part) }, { requiredKeys: ['Index'], noNullPrototype: true })),
    Disks: fc.record(
      { System: fc.record({ Size: long, LVM: fc.boolean() }, { requiredKeys: ['Size'], noNullPrototype: true }), Data: list(fc.record({ DiskId: text, Size: long }, { noNullPrototype: true })) },
      { requiredKeys: ['System'], noNullPrototype: true },
    ),
    ReplicationParameters: fc.json(),
  },
  { requiredKeys: ['SourceId'], noNullPrototype: true },
);

test('property: values flattened by openapi-util query() decode back to themselves', () => {
  fc.assert(
    fc.property(roundTripValue, (value) => {
      const flat = openapiUtil.default.query(value);
      const popCoreWire = Object.entries(flat).map(([k, v]) => `${popEncode(k)}=${popEncode(v)}`).join('&');
      for (const wire of [popCoreWire, stringify(flat)]) {
        assert.deepEqual(decoded(fromWire(RoundTrip, wire)), value);
      }
    }),
  );
});
