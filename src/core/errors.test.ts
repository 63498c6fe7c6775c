import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { test } from 'node:test';
import { renderErrorCodes } from '../../scripts/error-codes-doc.ts';
import { AppError, errorCatalogue, formatMessage, toAppError } from './errors.ts';

test('docs/error-codes.md lists exactly the catalogue (regenerate with scripts/error-codes-doc.ts)', () => {
  assert.equal(readFileSync(join(import.meta.dirname, '..', '..', 'docs', 'error-codes.md'), 'utf8'), renderErrorCodes());
});

test('every code maps to an HTTP error status and both clouds\' codes', () => {
  for (const [code, e] of Object.entries(errorCatalogue)) {
    assert.ok(e.httpStatus >= 400 && e.httpStatus <= 599, code);
    assert.match(e.alibabaCode, /^[A-Za-z][\w.]*$/, code);
    assert.match(e.huaweiCode, /^[A-Za-z]+\.\d{4}$/, code);
  }
});

test('messages fill their slots and keep unknown slots visible', () => {
  assert.equal(formatMessage('The {resource} {id} does not exist.', { resource: 'job', id: 'j-1' }), 'The job j-1 does not exist.');
  assert.equal(formatMessage('{a} and {b}', { a: 1 }), '1 and {b}');
});

test('an unknown failure becomes InternalError with the request id and no stack', () => {
  const err = toAppError(new TypeError('secret internals'), 'REQ-1');
  assert.equal(err.code, 'InternalError');
  assert.match(err.message, /REQ-1/);
  assert.doesNotMatch(err.message, /secret internals/);
  const known = new AppError('NotFound', { resource: 'job', id: 'x' });
  assert.equal(toAppError(known, 'REQ-2'), known);
});
