// @mention detection, matching and insertion in the message box, without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { insertMention, mentionAt, mentionCandidates, moveIndex } from '../../static/mentions.js';

test('the caret right after "@" and a partial name is a mention', () => {
  assert.deepEqual(mentionAt('hi @Ad', 6), { query: 'Ad', start: 3, end: 6 });
  assert.deepEqual(mentionAt('@', 1), { query: '', start: 0, end: 1 });
  assert.deepEqual(mentionAt('(@bo', 4), { query: 'bo', start: 1, end: 4 });
});

test('an e-mail address, a finished word or a caret elsewhere is not', () => {
  assert.equal(mentionAt('ann@example', 11), null);
  assert.equal(mentionAt('@Ada and', 8), null);
  assert.equal(mentionAt('@Ada hello', 2 + 'Ada hello'.length), null);
  assert.equal(mentionAt('no at sign', 10), null);
  assert.deepEqual(mentionAt('@Ada hello', 3), { query: 'Ad', start: 0, end: 3 });
});

test('names starting with the query come first, then names containing it, case-blind', () => {
  const names = ['Ada', 'Bob', 'Adam', 'Linda', 'bob'];
  assert.deepEqual(mentionCandidates('ad', names), ['Ada', 'Adam']);
  assert.deepEqual(mentionCandidates('da', names), ['Ada', 'Adam', 'Linda']);
  assert.deepEqual(mentionCandidates('BO', names), ['Bob', 'bob']);
  assert.deepEqual(mentionCandidates('', ['Ada', 'Ada', 'Bob']), ['Ada', 'Bob']);
  assert.deepEqual(mentionCandidates('z', names), []);
  assert.equal(mentionCandidates('', Array.from({ length: 20 }, (_, i) => `n${i}`)).length, 6);
});

test('picking a name replaces the query and leaves the caret after one space', () => {
  const text = 'so @ad what now';
  const mention = mentionAt(text, 6);
  assert.deepEqual(insertMention(text, mention, 'Ada Lovelace'), {
    text: 'so @Ada Lovelace what now', caret: 17,
  });
  assert.deepEqual(insertMention('@', mentionAt('@', 1), 'Bob'), { text: '@Bob ', caret: 5 });
});

test('moving through the list wraps around', () => {
  assert.equal(moveIndex(0, 1, 3), 1);
  assert.equal(moveIndex(2, 1, 3), 0);
  assert.equal(moveIndex(0, -1, 3), 2);
  assert.equal(moveIndex(0, 1, 0), -1);
});
