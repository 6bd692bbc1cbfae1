// The decisions behind the room's tools: who is typing, unread counts in the title, the answer
// mode line, the owner's settings form, excerpts and which reply Regenerate writes again.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  activeTypists, answerModeText, countsAsUnread, excerpt, isRoomOwner, latestReplyId, pageTitle,
  settingsChanges, typingText,
} from '../../static/store.js';

test('typing text names one, two or three people, and counts more', () => {
  assert.equal(typingText([]), '');
  assert.equal(typingText(['Ann']), 'Ann is typing…');
  assert.equal(typingText(['Ann', 'Bob']), 'Ann and Bob are typing…');
  assert.equal(typingText(['Ann', 'Bob', 'Cy']), 'Ann, Bob, and Cy are typing…');
  assert.equal(typingText(['A', 'B', 'C', 'D']), '4 people are typing…');
});

test('a typist not heard from for six seconds is no longer shown', () => {
  const typists = new Map([['u1', { name: 'Ann', at: 1000 }], ['u2', { name: 'Bob', at: 4000 }]]);
  assert.deepEqual(activeTypists(typists, 6999), ['Ann', 'Bob']);
  assert.deepEqual(activeTypists(typists, 7000), ['Bob']);
  assert.deepEqual(activeTypists(typists, 10000), []);
});

test('others\' messages are unread while the tab is hidden or scrolled up', () => {
  const me = { user_id: 'u1' };
  const theirs = { role: 'user', user_id: 'u2' };
  assert.equal(countsAsUnread(theirs, { me, hidden: false, pinned: true }), false);
  assert.equal(countsAsUnread(theirs, { me, hidden: true, pinned: true }), true);
  assert.equal(countsAsUnread(theirs, { me, hidden: false, pinned: false }), true);
  assert.equal(countsAsUnread({ role: 'assistant' }, { me, hidden: true, pinned: true }), true);
  assert.equal(countsAsUnread({ role: 'user', user_id: 'u1' }, { me, hidden: true, pinned: false }), false);
  assert.equal(countsAsUnread({ role: 'system' }, { me, hidden: true, pinned: false }), false);
});

test('the title carries the unread count first', () => {
  assert.equal(pageTitle('plans', 'Ada', 0), 'Threadroom · #plans · Ada');
  assert.equal(pageTitle('plans', 'Ada', 3), '(3) Threadroom · #plans · Ada');
  assert.equal(pageTitle(null, 'Ada', 120), '(99+) Threadroom · Ada');
});

test('the answer mode line says when the assistant answers', () => {
  assert.equal(answerModeText(null, 'Ada'), '');
  assert.equal(answerModeText({ answer_mode: 'every' }, 'Ada'), 'Ada answers every message');
  assert.match(answerModeText({ answer_mode: 'addressed' }, 'Ada'), /^Ada answers when addressed \(@Ada/);
});

test('only the owner is the owner; a room without one has none', () => {
  assert.equal(isRoomOwner({ owner: 'u1' }, { user_id: 'u1' }), true);
  assert.equal(isRoomOwner({ owner: 'u1' }, { user_id: 'u2' }), false);
  assert.equal(isRoomOwner({ owner: null }, { user_id: null }), false);
  assert.equal(isRoomOwner(null, { user_id: 'u1' }), false);
});

test('the settings form sends only what changed, and a passcode or an unlock', () => {
  const current = {
    answer_mode: 'every', assistant_name: 'Ada', instructions: '', stop_policy: 'anyone', locked: false,
  };
  const same = { answer_mode: 'every', assistant_name: 'Ada', instructions: '', stop_policy: 'anyone' };
  assert.deepEqual(settingsChanges(current, same), {});
  assert.deepEqual(settingsChanges(current, { ...same, answer_mode: 'addressed', passcode: 'open-1' }), {
    answer_mode: 'addressed', passcode: 'open-1',
  });
  assert.deepEqual(settingsChanges(current, { ...same, unlock: true }), {}); // open already
  assert.deepEqual(settingsChanges({ ...current, locked: true }, { ...same, unlock: true, passcode: 'x' }), {
    passcode: '',
  });
});

test('an excerpt is the first line, shortened with an ellipsis', () => {
  assert.equal(excerpt('  hello\nworld'), 'hello');
  assert.equal(excerpt('x'.repeat(100), 10), `${'x'.repeat(9)}…`);
  assert.equal(excerpt(undefined), '');
});

test('Regenerate writes the latest reply that was not replaced', () => {
  const list = [
    { id: 'a', role: 'assistant' }, { id: 'b', role: 'assistant', status: 'replaced' }, { id: 'u', role: 'user' },
  ];
  assert.equal(latestReplyId(list), 'a');
  assert.equal(latestReplyId([...list, { id: 'c', role: 'assistant', status: 'stopped' }]), 'c');
  assert.equal(latestReplyId([{ id: 'u', role: 'user' }]), null);
});
