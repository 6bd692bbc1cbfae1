// The page's decisions without a browser: transcript rebuild, queue display, pending messages,
// what the activity bar and the header say.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import {
  badgeText, busyText, continuedText, createState, draftProblem, isOwn, pageTitle, partialReplies, planQueue,
  planRebuild, resumedText, roomFromSearch, stoppedNote, validIdentity, validMembers, version,
} from '../../static/store.js';

const CONFIG = { assistant_name: 'Bot', backend: 'demo', model: 'demo-1', is_demo: true };

function user(id, content = `text ${id}`) {
  return { id, user_id: 'u1', name: 'Ann', content, role: 'user', created_at: 1 };
}

function reply(id, content = `reply ${id}`, extra = {}) {
  return { id, name: 'Bot', content, role: 'assistant', created_at: 2, ...extra };
}

// A state with these ids already shown (the page keeps elements; any value does here).
function stateShowing(ids, changes = {}) {
  const state = createState({ config: CONFIG, identity: null, room: null });
  for (const id of ids) state.shown.set(id, `node ${id}`);
  return Object.assign(state, changes);
}

const ids = (messages) => messages.map((m) => m.id);

test('the history is shown in its own order, each id once, the first copy winning', () => {
  const history = [user('a'), reply('b'), user('a', 'a later copy'), user('c'), reply('b')];
  const { messages, listed, kept } = planRebuild(history, stateShowing([]));
  assert.deepEqual(ids(messages), ['a', 'b', 'c']);
  assert.equal(messages[0].content, 'text a');
  assert.deepEqual([...listed], ['a', 'b', 'c']);
  assert.deepEqual(kept, []);
});

test('entries that are not messages are left out of the history', () => {
  const history = [null, 'text', { id: 'x' }, { content: 'no id' }, user('a'), { id: 0, content: 'zero' }];
  assert.deepEqual(ids(planRebuild(history, stateShowing([])).messages), ['a', 0]);
});

test('a reply being written is shown by its streaming bubble, not by its cut history copy', () => {
  const state = stateShowing(['s'], { busy: { turn: 1 } });
  state.streams.set('s', { text: 'so far' });
  const { messages, listed, kept } = planRebuild([user('a'), reply('s', 'so')], state);
  assert.deepEqual(ids(messages), ['a']);
  assert.ok(!listed.has('s')); // its bubble is not dropped
  assert.deepEqual(kept, ['s']); // and stays after the history
});

test('once the turn is over, the history copy of a streamed reply replaces its bubble', () => {
  const state = stateShowing(['s'], { busy: null });
  state.streams.set('s', { text: 'all of it' });
  const { messages, listed, kept } = planRebuild([user('a'), reply('s', 'all of it')], state);
  assert.deepEqual(ids(messages), ['a', 's']);
  assert.ok(listed.has('s'));
  assert.deepEqual(kept, []);
});

test('own messages not yet accepted and messages that arrived early are kept after the history', () => {
  const state = stateShowing(['a', 'mine', 'early', 'gone']);
  state.pending.add('mine');
  state.arrivedEarly.add('early');
  state.arrivedEarly.add('a'); // the history holds it: shown once, in the history's place
  state.arrivedEarly.add('mine'); // pending and early: kept once
  state.pending.add('never-shown'); // dropped meanwhile: nothing to keep
  const { messages, kept } = planRebuild([user('a')], state);
  assert.deepEqual(ids(messages), ['a']);
  assert.deepEqual(kept, ['mine', 'early']);
});

test('live streams come first among the kept, in the order they started', () => {
  const state = stateShowing(['p', 's1', 's2'], { busy: { turn: 2 } });
  state.pending.add('p');
  state.streams.set('s1', {});
  state.streams.set('s2', {});
  assert.deepEqual(planRebuild([], state).kept, ['s1', 's2', 'p']);
});

test('the queue accepts pending messages it lists and marks only what it lists now', () => {
  const state = stateShowing([]);
  state.pending = new Set(['mine', 'other-pending']);
  state.waiting = new Set(['old', 'still']);
  const plan = planQueue({ waiting: ['still', 'mine', 'new'] }, state);
  assert.deepEqual(plan.accept, ['mine']);
  assert.deepEqual(plan.done, ['old']);
  assert.deepEqual([...plan.waiting], ['still', 'mine', 'new']);
});

test('a queue event without a list empties the queue', () => {
  const state = stateShowing([]);
  state.waiting = new Set(['a', 'b']);
  for (const data of [{}, null, { waiting: 'a' }]) {
    const plan = planQueue(data, state);
    assert.deepEqual(plan.done, ['a', 'b']);
    assert.equal(plan.waiting.size, 0);
  }
});

test('the activity bar names whom the assistant is answering', () => {
  assert.equal(busyText('Bot', { replying_to: ['Ann'] }), 'Bot is answering Ann…');
  assert.equal(busyText('Bot', { replying_to: ['Ann', 'Ben'] }), 'Bot is answering Ann and Ben…');
  assert.equal(busyText('Bot', { replying_to: [3, 'Cy', null] }), 'Bot is answering Cy…');
  assert.equal(busyText('Bot', { replying_to: 'Ann' }), 'Bot is answering…');
  assert.equal(busyText('Bot', {}), 'Bot is answering…');
});

test('a message version changes when a reply grows or ends, never for user messages', () => {
  assert.equal(version(user('a', 'hello')), '');
  assert.equal(version(reply('b', 'héllo 👋')), ':7'); // code points, as the server counts
  assert.equal(version(reply('b', 'cut', { status: 'stopped' })), 'stopped:3');
  assert.notEqual(version(reply('b', 'cut')), version(reply('b', 'cut', { status: 'stopped' })));
});

test('own messages are user messages with our user id', () => {
  assert.ok(isOwn(user('a'), { user_id: 'u1' }));
  assert.ok(!isOwn(user('a'), { user_id: 'u2' }));
  assert.ok(!isOwn(user('a'), null));
  assert.ok(!isOwn({ ...reply('b'), user_id: 'u1' }, { user_id: 'u1' }));
});

test('only a valid room name in the address picks a room', () => {
  assert.equal(roomFromSearch('?room=Team-1'), 'team-1');
  assert.equal(roomFromSearch('?room=%20lab_2%20'), 'lab_2');
  assert.equal(roomFromSearch('?room=-bad'), null);
  assert.equal(roomFromSearch('?room=' + 'a'.repeat(33)), null);
  assert.equal(roomFromSearch(''), null);
});

test('a saved identity counts only in its current shape', () => {
  const saved = { user_id: 'u1', name: 'Ann', token: 't' };
  assert.equal(validIdentity(saved), saved);
  assert.equal(validIdentity({ user_id: 1, name: 'Ann' }), null);
  assert.equal(validIdentity('Ann'), null);
  assert.equal(validIdentity(null), null);
});

test('the header says which model answers, and the title which room', () => {
  assert.equal(badgeText({ backend: 'openai', model: 'gpt', is_demo: false }), 'openai · gpt');
  assert.equal(badgeText({ backend: 'openai', model: '', is_demo: false }), 'openai');
  assert.equal(badgeText({ backend: 'demo', model: 'x', is_demo: true }), 'Offline demo model');
  assert.equal(pageTitle('lab', 'Bot'), 'Threadroom · #lab · Bot');
  assert.equal(pageTitle(null, 'Bot'), 'Threadroom · Bot');
});

test('members without an id or a name are left out', () => {
  const members = [{ user_id: 'u1', name: 'Ann' }, { user_id: 'u2' }, null, { name: 'X' }];
  assert.deepEqual(validMembers(members), [{ user_id: 'u1', name: 'Ann' }]);
  assert.deepEqual(validMembers('nobody'), []);
});

test('a stopped reply names who stopped it', () => {
  assert.equal(stoppedNote({ user_id: 'u1', name: 'Bo' }), 'Stopped by Bo');
  assert.equal(stoppedNote(null), 'Stopped by someone');
  assert.equal(stoppedNote({ name: 5 }), 'Stopped by someone');
});

test('welcome resumes partial replies, and the longer text wins', () => {
  const partial = [{ id: 's', text: 'Hel' }, { id: null, text: 'x' }, { id: 't', text: 4 }, null];
  assert.deepEqual(partialReplies(partial), [{ id: 's', text: 'Hel' }]);
  assert.deepEqual(partialReplies(undefined), []);
  assert.equal(resumedText('Hello', 'Hel'), 'Hello');
  assert.equal(resumedText('He', 'Hel'), 'Hel');
});

test('a delta continues the text at its offset, never repeating what a joiner already has', () => {
  assert.equal(continuedText('Hello', ' world', 5), 'Hello world');
  // welcome's partial already held this delta (it raced the join): shown once
  assert.equal(continuedText('Hello world', ' world', 5), 'Hello world');
  assert.equal(continuedText('Hello wo', ' world', 5), 'Hello world'); // overlaps: completed
  assert.equal(continuedText('Hello', ' world', undefined), 'Hello world'); // an older server
  assert.equal(continuedText('Hi', ' world', 5), 'Hi world'); // a gap: keep going
});

test('a draft is refused with the sentence that says why', () => {
  const ready = { identity: { user_id: 'u1', name: 'Ann' }, connected: true, maxChars: 5 };
  assert.equal(draftProblem('hi', ready), null);
  assert.equal(draftProblem('hi', { ...ready, identity: null }), 'Choose a nickname to join the room.');
  assert.equal(draftProblem('hi', { ...ready, connected: false }), 'Not connected to the room yet. Please wait a moment.');
  assert.equal(draftProblem('', ready), 'Type a message first.');
  assert.equal(draftProblem('👋👋👋👋👋', ready), null); // five code points, not ten UTF-16 units
  assert.equal(draftProblem('abcdef', ready), 'The message is too long: 6 characters, the limit is 5.');
});
