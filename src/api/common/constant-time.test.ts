import assert from 'node:assert/strict';
import { test } from 'node:test';
import { constantTimeEqual } from './constant-time.ts';

test('equal signatures match; any difference, including length, does not', () => {
  assert.equal(constantTimeEqual('OLeaidS1JvxuMvnyHOwuJ+uX5qY=', 'OLeaidS1JvxuMvnyHOwuJ+uX5qY='), true);
  assert.equal(constantTimeEqual('OLeaidS1JvxuMvnyHOwuJ+uX5qY=', 'OLeaidS1JvxuMvnyHOwuJ+uX5qZ='), false);
  assert.equal(constantTimeEqual('OLeaidS1JvxuMvnyHOwuJ+uX5qY', 'OLeaidS1JvxuMvnyHOwuJ+uX5qY='), false);
  assert.equal(constantTimeEqual('', 'x'), false);
});
