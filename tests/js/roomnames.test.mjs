// Room names, ?room=, invite links and the recent rooms list, without a browser.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  inviteUrl, parseRoomParam, randomRoomName, rememberRoom, roomNameProblem, ROOM_PATTERN, suggestRoomName,
  validRecent,
} from '../../static/roomnames.js';

test('?room= is a room, the lobby when absent, and an invalid one is kept to explain', () => {
  assert.deepEqual(parseRoomParam('?room=team-1'), { room: 'team-1', invalid: null });
  assert.deepEqual(parseRoomParam('?room=Team-1'), { room: 'team-1', invalid: null });
  assert.deepEqual(parseRoomParam(''), { room: null, invalid: null });
  assert.deepEqual(parseRoomParam('?room=%20'), { room: null, invalid: null });
  assert.deepEqual(parseRoomParam('?room=Other%20Room!'), { room: null, invalid: 'Other Room!' });
  assert.deepEqual(parseRoomParam('?room=-bad'), { room: null, invalid: '-bad' });
  assert.equal(parseRoomParam(`?room=${'a'.repeat(33)}`).invalid, 'a'.repeat(33));
});

test('a typed room name is checked against the server rule', () => {
  assert.equal(roomNameProblem('plans_2026'), null);
  assert.match(roomNameProblem('Plans 2026'), /lowercase letters, digits, - or _/);
  assert.match(roomNameProblem(''), /random/);
  assert.match(roomNameProblem('a'.repeat(33)), /1-32/);
});

test('the nearest valid name is suggested for an invalid one', () => {
  assert.equal(suggestRoomName('Other Room!'), 'other-room');
  assert.equal(suggestRoomName('  Café Zürich '), 'cafe-zurich');
  assert.equal(suggestRoomName('!!!'), null);
  assert.equal(suggestRoomName('x'.repeat(40)).length, 32);
});

test('random room names are valid and vary', () => {
  let seed = 0;
  const steps = () => { seed = (seed + 0.37) % 1; return seed; };
  const names = new Set(Array.from({ length: 20 }, () => randomRoomName(steps)));
  for (const name of names) assert.match(name, ROOM_PATTERN);
  assert.ok(names.size > 5);
  assert.equal(randomRoomName(() => 0), 'amber-badger-00');
  assert.equal(randomRoomName(() => 0.999), 'witty-zephyr-99');
});

test('an invite link is the page with only ?room= (none for the lobby)', () => {
  assert.equal(inviteUrl('http://h:5020/chat/?room=a&x=1#top', 'plans'), 'http://h:5020/chat/?room=plans');
  assert.equal(inviteUrl('http://h/?room=plans', 'lobby'), 'http://h/');
  assert.equal(inviteUrl('http://h/', null), 'http://h/');
});

test('recent rooms: newest first, each once, at most eight, bad entries dropped', () => {
  let recent = null;
  for (let i = 0; i < 10; i += 1) recent = rememberRoom(recent, `room-${i}`, i);
  assert.equal(recent.length, 8);
  assert.equal(recent[0].name, 'room-9');
  recent = rememberRoom(recent, 'room-5', 99);
  assert.deepEqual(recent.slice(0, 2).map((r) => r.name), ['room-5', 'room-9']);
  assert.equal(recent.filter((r) => r.name === 'room-5').length, 1);
  assert.deepEqual(validRecent([{ name: 'ok', at: 1 }, { name: 'Bad!', at: 2 }, 'x', null, { name: 'n' }]), [
    { name: 'ok', at: 1 },
  ]);
  assert.deepEqual(validRecent({ not: 'a list' }), []);
});
