import assert from 'node:assert/strict';
import { test } from 'node:test';
import teaXml from '@alicloud/tea-xml';
import { AppError } from '../../core/errors.ts';
import { errorResponse, jsonContentType, recommendUrl, renderBody, renderXml, successBody, wantsXml, xmlContentType } from './responses.ts';

const ctx = { requestId: '6A0B1C2D-0000-4000-8000-000000000001', hostId: 'smc.aliyuncs.com', product: 'Smc' };

test('a success body is {RequestId, ...fields} and the handler cannot replace the RequestId', () => {
  const body = successBody('R-1', { RequestId: 'spoofed', TotalCount: 1, ReplicationJobs: { ReplicationJob: [{ JobId: 'j-1' }] } });
  assert.deepEqual(body, { RequestId: 'R-1', TotalCount: 1, ReplicationJobs: { ReplicationJob: [{ JobId: 'j-1' }] } });
  assert.equal(Object.keys(body)[0], 'RequestId');
});

test('a success body may carry only the Codes pop-core accepts (or a falsy one such as ENS numeric 0)', () => {
  for (const Code of [undefined, 0, 200, '200', 'OK', 'Success', 'success', '']) {
    assert.doesNotThrow(() => successBody('R-1', { Code }), String(Code));
  }
  // Per-item codes nested in results are not pop-core's concern.
  assert.doesNotThrow(() => successBody('R-1', { Results: [{ Code: 400, Message: 'failed' }] }));
  for (const Code of ['Forbidden.RAM', '0', 'InternalError', 1]) {
    assert.throws(() => successBody('R-1', { Code }), (err: unknown) => err instanceof AppError && err.code === 'InternalError' && err.httpStatus === 500, String(Code));
  }
});

test('an error answer has a 4xx/5xx status and the envelope every client reads', () => {
  const { status, body } = errorResponse(new AppError('InvalidParameter', { name: 'PageSize', reason: 'is too large; the maximum is 50' }), ctx);
  assert.equal(status, 400);
  assert.deepEqual(body, {
    RequestId: ctx.requestId,
    HostId: 'smc.aliyuncs.com',
    Code: 'InvalidParameter',
    Message: 'The parameter PageSize is invalid: is too large; the maximum is 50.',
    Recommend: `https://api.aliyun.com/troubleshoot?q=InvalidParameter&product=Smc&requestId=${ctx.requestId}`,
  });
});

test('catalogue overrides of the Alibaba code and status reach the wire; a status below 400 becomes 500', () => {
  const ens = errorResponse(new AppError('NotFound', { resource: 'event', id: 'e-1' }, { alibabaCode: 'NoPermission', httpStatus: 400 }), { ...ctx, product: 'Ens' });
  assert.equal(ens.status, 400);
  assert.equal(ens.body.Code, 'NoPermission');
  const bogus = errorResponse(new AppError('InternalError', { requestId: ctx.requestId }, { httpStatus: 200 }), ctx);
  assert.equal(bogus.status, 500);
});

test('a RAM denial carries AccessDeniedDetail only when given', () => {
  const detail = { AuthAction: 'smc:StartReplicationJob', NoPermissionType: 'ImplicitDeny' as const };
  const denied = errorResponse(new AppError('AccessKeyDisabled', { accessKeyId: 'k' }), { ...ctx, accessDeniedDetail: detail });
  assert.deepEqual(denied.body.AccessDeniedDetail, detail);
  assert.equal('AccessDeniedDetail' in errorResponse(new AppError('AccessKeyDisabled', { accessKeyId: 'k' }), ctx).body, false);
});

test('the Recommend link escapes what it embeds', () => {
  assert.equal(recommendUrl('InvalidTimeStamp.Expired', 'Smc', 'a&b'), 'https://api.aliyun.com/troubleshoot?q=InvalidTimeStamp.Expired&product=Smc&requestId=a%26b');
});

test('Format picks XML case-insensitively; absent, json or anything else is JSON', () => {
  assert.equal(wantsXml('XML'), true);
  assert.equal(wantsXml('xml'), true);
  for (const format of [undefined, 'JSON', 'json', '', 'yaml']) assert.equal(wantsXml(format), false);
  assert.deepEqual(renderBody({ RequestId: 'R' }, 'json', 'X'), { contentType: jsonContentType, payload: '{"RequestId":"R"}' });
  assert.equal(renderBody({ RequestId: 'R' }, 'XML', 'X').contentType, xmlContentType);
});

test('XML repeats a list field per item, escapes markup and reads back with the SDK XML parser', () => {
  const body = {
    RequestId: 'R-1',
    Name: `a<b>&"c'`,
    Count: 2,
    Ok: true,
    Missing: undefined,
    Empty: null,
    ReplicationJobs: { ReplicationJob: [{ JobId: 'j-1' }, { JobId: 'j-2' }] },
  };
  const xml = renderXml('DescribeReplicationJobsResponse', body);
  assert.equal(
    xml,
    '<?xml version="1.0" encoding="UTF-8"?><DescribeReplicationJobsResponse><RequestId>R-1</RequestId>'
      + '<Name>a&lt;b&gt;&amp;&quot;c&apos;</Name><Count>2</Count><Ok>true</Ok><Empty/>'
      + '<ReplicationJobs><ReplicationJob><JobId>j-1</JobId></ReplicationJob><ReplicationJob><JobId>j-2</JobId></ReplicationJob></ReplicationJobs>'
      + '</DescribeReplicationJobsResponse>',
  );
  const parsed = teaXml.default.parseXml(xml, null);
  assert.deepEqual(parsed['DescribeReplicationJobsResponse'], {
    RequestId: 'R-1', Name: `a<b>&"c'`, Count: '2', Ok: 'true', Empty: '',
    ReplicationJobs: { ReplicationJob: [{ JobId: 'j-1' }, { JobId: 'j-2' }] },
  });
});

test('XML replaces characters XML 1.0 cannot carry and stray characters in field names', () => {
  const xml = renderXml('Error', { 'Bad Name': 'x\u0001y\uD800z', '1st': 'v' });
  assert.equal(xml, '<?xml version="1.0" encoding="UTF-8"?><Error><Bad_Name>x\uFFFDy\uFFFDz</Bad_Name><_1st>v</_1st></Error>');
  assert.doesNotThrow(() => teaXml.default.parseXml(xml, null));
});

test('an error body renders as the <Error> document openapi-client parses on text/xml', () => {
  const { body } = errorResponse(new AppError('MissingParameter', { name: 'JobId' }), ctx);
  const rendered = renderBody(body, 'XML', 'Error');
  const parsed = teaXml.default.parseXml(rendered.payload, null) as { Error: Record<string, string> };
  assert.equal(parsed.Error['Code'], 'MissingParameter');
  assert.equal(parsed.Error['Message'], 'The required parameter JobId is missing.');
});
