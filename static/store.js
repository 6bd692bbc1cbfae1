// The page's state and the decisions taken on it (transcript rebuild, queue display, pending
// messages, what the activity bar says). Pure: no DOM and no globals, so Node can test it. The
// maps hold whatever the caller keeps per message id (the page keeps elements).

import { ROOM_PATTERN } from './roomnames.js';
import { charCount, isMember, isMessage, listNames } from './util.js';

export { ROOM_PATTERN };
export const TYPING_TTL_MS = 6000; // a typist not heard from for this long has stopped

export const END_NOTES = {
  failed: 'The reply failed.',
  expired: 'The reply expired.',
  timeout: 'The reply took too long and was stopped.',
  interrupted: 'The reply was interrupted.',
  replaced: 'Replaced by a newer reply.',
};

export function createState({ config, identity, room }) {
  return {
    identity, // {user_id, name}: what this browser asks to be
    room, // ?room=name, else null (the server's default room)
    me: null, // {user_id, name}: what the server registered (the name may carry a suffix)
    registered: false,
    everConnected: false,
    assistant: { name: config.assistant_name, backend: config.backend, model: config.model, is_demo: config.is_demo },
    members: [],
    busy: null, // {turn, replying_to} between ai-start and ai-end
    awaitingHistory: false, // the message-list right after welcome is the full history
    arrivedEarly: new Set(), // ids shown after welcome but before the history: keep them
    systemLines: new Set(), // texts of system lines shown, so an error frame repeating one is not shown twice
    shown: new Map(), // message id -> its element in the transcript (the dedupe key)
    streams: new Map(), // assistant message id -> streaming bubble {id, el, body, text, frame, settled}
    turnIds: new Set(), // assistant message ids seen during the current turn
    pending: new Set(), // own message ids sent but not yet accepted
    waiting: new Set(), // message ids the server lists as queued for the assistant
    pinned: true, // the reader is at the bottom of the transcript, so new content scrolls into view
    settings: null, // the room's settings (welcome, then room): owner, answer mode, instructions, …
    typists: new Map(), // user_id -> {name, at}: people typing now, as the server told us
    unread: 0, // messages that arrived while the tab was hidden or the reader scrolled up
    replyTo: null, // {id, name, text}: the message the next one answers
    passcode: '', // the passcode this tab joined a locked room with (memory only: not stored)
    removed: null, // {by, until}: the owner removed us from this room
  };
}

// ?room=name picks a room; anything the server would refuse falls back to the default room.
export function roomFromSearch(search) {
  const room = (new URLSearchParams(search).get('room') || '').trim().toLowerCase();
  return ROOM_PATTERN.test(room) ? room : null;
}

// Anything else saved as the identity (an old format, a hand edit) means: ask for a nickname again.
export function validIdentity(saved) {
  return typeof saved?.user_id === 'string' && typeof saved?.name === 'string' ? saved : null;
}

export function isOwn(msg, me) {
  return msg.role === 'user' && Boolean(me) && msg.user_id === me.user_id;
}

// What can change in a message already shown: an assistant reply cut short, then stopped.
export function version(msg) {
  return msg.role === 'assistant' ? `${msg.status ?? ''}:${charCount(msg.content)}` : '';
}

// The full history replaces the transcript. Returns the messages to show, in the history's order,
// each id once (the first copy wins); `listed`, every id the history holds; and `kept`, the ids
// shown now that the history cannot know yet: replies still streaming, own messages not yet
// accepted, messages broadcast while the server was reading the history for us.
export function planRebuild(history, { busy, streams, pending, arrivedEarly, shown }) {
  // A reply being written is in the history too, cut wherever it was when the server read it. The
  // streaming bubble (started from welcome's partial text, continued by the deltas) stands for it.
  const live = busy ? streams : new Map();
  const listed = new Set();
  const messages = [];
  for (const msg of history) {
    if (!isMessage(msg) || (msg.role === 'assistant' && live.has(msg.id))) continue;
    if (!listed.has(msg.id)) messages.push(msg);
    listed.add(msg.id);
  }
  const kept = [...new Set([...streams.keys(), ...pending, ...arrivedEarly])]
    .filter((id) => !listed.has(id) && shown.has(id));
  return { messages, listed, kept };
}

// The server's queue list replaces the last one: which pending messages it accepts, which shown
// messages stop waiting, and the new set of waiting ids.
export function planQueue(data, { waiting, pending }) {
  const next = new Set(Array.isArray(data?.waiting) ? data.waiting : []);
  return {
    accept: [...next].filter((id) => pending.has(id)),
    done: [...waiting].filter((id) => !next.has(id)),
    waiting: next,
  };
}

export function waitingNote(assistantName) { return `waiting for ${assistantName}`; }

export function busyText(assistantName, busy) {
  const names = Array.isArray(busy?.replying_to) ? busy.replying_to.filter((n) => typeof n === 'string') : [];
  return names.length ? `${assistantName} is answering ${listNames(names)}…` : `${assistantName} is answering…`;
}

export function stoppedNote(stoppedBy) {
  const who = stoppedBy && typeof stoppedBy.name === 'string' ? stoppedBy.name : 'someone';
  return `Stopped by ${who}`;
}

export function badgeText({ backend, model, is_demo: isDemo }) {
  return isDemo ? 'Offline demo model' : [backend, model].filter(Boolean).join(' · ');
}

export function pageTitle(room, assistantName, unread = 0) {
  const title = ['Threadroom', room && `#${room}`, assistantName].filter(Boolean).join(' · ');
  return unread > 0 ? `(${unread > 99 ? '99+' : unread}) ${title}` : title;
}

// Whether a message that just arrived is unread: someone else's, while the reader is not looking
// at the bottom of the conversation (tab hidden, or scrolled up).
export function countsAsUnread(msg, { me, hidden, pinned }) {
  if (!msg || msg.role === 'system') return false;
  if (msg.role === 'user' && me && msg.user_id === me.user_id) return false;
  return hidden || !pinned;
}

// The people typing now, in the order they started, without anyone silent for `ttl` or more.
export function activeTypists(typists, now, ttl = TYPING_TTL_MS) {
  return [...typists.values()].filter((t) => now - t.at < ttl).map((t) => t.name);
}

export function typingText(names) {
  if (!names.length) return '';
  if (names.length > 3) return `${names.length} people are typing…`;
  return `${listNames(names)} ${names.length === 1 ? 'is' : 'are'} typing…`;
}

// The line under the header: when the assistant answers, and what else a member should know.
export function answerModeText(settings, assistantName) {
  if (!settings) return '';
  // How to address it in full (a reply to it, a question naming it) is in the line's tooltip and
  // the settings dialog; the line itself stays one line on a phone.
  return settings.answer_mode === 'addressed'
    ? `${assistantName} answers when addressed (@${assistantName})`
    : `${assistantName} answers every message`;
}

export function isRoomOwner(settings, me) {
  return Boolean(settings?.owner) && Boolean(me) && settings.owner === me.user_id;
}

// The changes a settings form makes, as room-settings wants them: only what differs.
export function settingsChanges(current, form) {
  const changes = {};
  for (const key of ['answer_mode', 'assistant_name', 'instructions', 'stop_policy']) {
    if (form[key] !== undefined && form[key] !== current[key]) changes[key] = form[key];
  }
  if (form.unlock && current.locked) changes.passcode = '';
  else if (form.passcode) changes.passcode = form.passcode;
  return changes;
}

// A message's first line, shortened, to quote it above the composer or above a reply.
export function excerpt(text, max = 80) {
  const line = String(text ?? '').trim().split('\n')[0];
  return Array.from(line).length > max ? `${Array.from(line).slice(0, max - 1).join('')}…` : line;
}

// The id of the latest assistant reply that can be written again (not replaced, not streaming).
export function latestReplyId(messages) {
  for (let i = messages.length - 1; i >= 0; i -= 1) {
    const m = messages[i];
    if (m.role === 'assistant' && m.status !== 'replaced') return m.id;
  }
  return null;
}

export function validMembers(members) {
  return Array.isArray(members) ? members.filter(isMember) : [];
}

// Joining (or coming back) while a reply is being written: welcome carries what is written so far.
export function partialReplies(partial) {
  if (!Array.isArray(partial)) return [];
  return partial.filter((p) => p && p.id != null && typeof p.text === 'string');
}

// A delta continues the text at character `at` (the length written before it). A joiner's partial
// text and the deltas racing it can overlap: what is already shown is not added twice. Without
// `at` (an older server) the delta is appended.
export function continuedText(shownText, delta, at) {
  if (!Number.isInteger(at) || at < 0 || at > shownText.length) return shownText + delta;
  if (shownText.length >= at + delta.length) return shownText; // already shown
  return shownText.slice(0, at) + delta;
}

// The longer text wins: welcome's partial may be older than deltas already shown.
export function resumedText(shownText, partialText) {
  return partialText.length >= shownText.length ? partialText : shownText;
}

// Why a draft cannot be sent yet, or null when it can.
export function draftProblem(content, { identity, connected, maxChars }) {
  if (!identity) return 'Choose a nickname to join the room.';
  if (!connected) return 'Not connected to the room yet. Please wait a moment.';
  if (!content) return 'Type a message first.';
  const count = charCount(content);
  if (count > maxChars) return `The message is too long: ${count} characters, the limit is ${maxChars}.`;
  return null;
}
