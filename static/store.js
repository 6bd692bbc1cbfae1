// The page's state and the decisions taken on it (transcript rebuild, queue display, pending
// messages, what the activity bar says). Pure: no DOM and no globals, so Node can test it. The
// maps hold whatever the caller keeps per message id (the page keeps elements).

import { charCount, isMember, isMessage, listNames } from './util.js';

export const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/; // the server's rule for room names

export const END_NOTES = {
  failed: 'The reply failed.',
  expired: 'The reply expired.',
  timeout: 'The reply took too long and was stopped.',
  interrupted: 'The reply was interrupted.',
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

export function pageTitle(room, assistantName) {
  return ['Threadroom', room && `#${room}`, assistantName].filter(Boolean).join(' · ');
}

export function validMembers(members) {
  return Array.isArray(members) ? members.filter(isMember) : [];
}

// Joining (or coming back) while a reply is being written: welcome carries what is written so far.
export function partialReplies(partial) {
  if (!Array.isArray(partial)) return [];
  return partial.filter((p) => p && p.id != null && typeof p.text === 'string');
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
