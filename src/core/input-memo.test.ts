import assert from 'node:assert/strict';
import { it } from 'node:test';
import { InputMemo } from './input-memo.ts';

it('returns the remembered value for equal inputs and makes a new one when any input differs', () => {
  const memo = new InputMemo<{ text: string }>(10);
  let made = 0;
  const view = (name: string, size: number) => memo.get('s-1', [name, size], () => ({ text: `${name}:${size} #${(made += 1)}` }));
  const first = view('web', 40);
  assert.equal(view('web', 40), first);
  assert.equal(view('web', 41).text, 'web:41 #2');
  assert.equal(view('db', 41).text, 'db:41 #3');
  assert.equal(view('db', 41).text, 'db:41 #3');
  assert.equal(memo.get('s-2', ['db', 41], () => ({ text: 'other key' })).text, 'other key', 'keys do not share values');
  assert.equal(memo.get('s-1', ['db', 41, 'extra'], () => ({ text: 'longer inputs' })).text, 'longer inputs');
});

it('holds at most maxEntries keys, starting over when full', () => {
  const memo = new InputMemo<number>(2);
  let made = 0;
  const get = (key: string) => memo.get(key, [1], () => (made += 1));
  assert.deepEqual([get('a'), get('b'), get('a')], [1, 2, 1]);
  assert.equal(get('c'), 3, 'a third key starts over');
  assert.equal(get('a'), 4, 'and the first is made again');
});

it('freezes what it remembers, so no caller changes what the next one gets', () => {
  const memo = new InputMemo<{ parts: { size: number }[] }>(10);
  const value = memo.get('s-1', [], () => ({ parts: [{ size: 1 }] }));
  assert.throws(() => {
    (value.parts as { size: number }[]).push({ size: 2 });
  }, TypeError);
  assert.throws(() => {
    (value.parts[0] as { size: number }).size = 3;
  }, TypeError);
});
