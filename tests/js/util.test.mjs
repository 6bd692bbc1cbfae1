// The small helpers: counting as the server counts, joining names, error sentences, ids.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { charCount, errorText, isMember, isMessage, listNames, uuid } from '../../static/util.js';

test('characters are counted as code points, as Python len counts them', () => {
  assert.equal(charCount('abc'), 3);
  assert.equal(charCount('👋🏽'), 2);
  assert.equal(charCount('é'), 1);
});

test('names are joined as a sentence', () => {
  assert.equal(listNames(['Ann']), 'Ann');
  assert.equal(listNames(['Ann', 'Ben']), 'Ann and Ben');
});

test('an error sentence is used only when it says something', () => {
  assert.equal(errorText('Too long.', 'fallback'), 'Too long.');
  assert.equal(errorText('   ', 'fallback'), 'fallback');
  assert.equal(errorText({ error: 'x' }, 'fallback'), 'fallback');
  assert.equal(errorText(undefined, 'fallback'), 'fallback');
});

test('messages and members need their fields', () => {
  assert.ok(isMessage({ id: 0, content: '' }));
  assert.ok(!isMessage({ id: null, content: 'x' }));
  assert.ok(!isMessage({ id: 'a', content: 5 }));
  assert.ok(isMember({ user_id: 0, name: '' }));
  assert.ok(!isMember({ user_id: 'u', name: null }));
});

const UUID4 = /^[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/;

test('ids are version 4 UUIDs, also where randomUUID is missing (plain http)', () => {
  assert.match(uuid(), UUID4);
  const zeros = { getRandomValues: (bytes) => bytes.fill(0) };
  assert.equal(uuid(zeros), '00000000-0000-4000-8000-000000000000');
  const ones = { getRandomValues: (bytes) => bytes.fill(0xff) };
  assert.equal(uuid(ones), 'ffffffff-ffff-4fff-bfff-ffffffffffff');
});
