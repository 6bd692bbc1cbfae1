// The room protocol over Socket.IO: connect, register, and each server event to its handler.

import { io } from './vendor/socket.io.esm.min.js';
import { rememberCurrentRoom } from './header.js';
import { openNicknameDialog, openPasscodePrompt, setNicknameError } from './nickname.js';
import { applySettings, onRemoved } from './owner.js';
import { config, els, state, STORAGE_IDENTITY, writeStorage } from './page.js';
import {
  applyAssistant, onAiEnd, onAiStart, onJoin, onLeave, onQueue, onTool, renderPresence, setMembers, showBusy,
} from './room.js';
import { onDelta, rebuildTranscript, resumeStreams, showMessage, showNotice } from './transcript.js';
import { onTyping } from './typing.js';
import { errorText } from './util.js';

const ACK_TIMEOUT_MS = 15000;

// The socket lives beside the page, wherever the page is served: /socket.io at the root, and
// /chat/socket.io when a proxy serves the app under /chat/. In shared mode (several processes
// behind a load balancer) it opens a WebSocket straight away: long-polling's separate requests
// would each need to reach the process that holds the session (sticky sessions).
export const socket = io({
  autoConnect: false,
  path: new URL('socket.io', document.baseURI).pathname,
  transports: config.websocket_only ? ['websocket'] : ['polling', 'websocket'],
});

function setBanner(visible) {
  els.connectionBanner.textContent = state.everConnected ? 'Reconnecting…' : 'Connecting…';
  els.connectionBanner.hidden = !visible;
}

function onConnect() {
  state.everConnected = true;
  setBanner(false);
  if (state.identity?.name && !state.removed) register(state.identity);
}

function onDisconnect(reason) {
  state.registered = false;
  setBanner(true);
  // The client only retries by itself after a network drop, not after the server closed the session.
  if (reason === 'io server disconnect') els.connectionBanner.textContent = 'Disconnected. Reload the page to rejoin.';
}

// A locked room's refusals name the passcode ("This room is locked. Ask its owner for the
// passcode.", "That passcode is not right. …"): those ask for it rather than for a new nickname.
const PASSCODE_REFUSAL = /passcode/i;

export function register(identity) {
  const payload = { ...identity };
  if (state.room) payload.room = state.room;
  if (state.passcode) payload.passcode = state.passcode;
  socket.timeout(ACK_TIMEOUT_MS).emit('register', payload, (err, ack) => {
    if (!err && ack?.ok) return onRegistered(ack, identity);
    const error = errorText(ack?.error, 'That nickname cannot be used. Please choose another.');
    if (!err && PASSCODE_REFUSAL.test(error)) openPasscodePrompt(error);
    else if (!err) openNicknameDialog(error);
    else if (els.nicknameDialog.open) setNicknameError('The server did not answer. Please try again.');
    else showNotice('Could not rejoin the room: the server did not answer. Reload the page to try again.');
  });
}

function onRegistered(ack, identity) {
  state.me = { user_id: ack.user_id ?? identity.user_id, name: ack.name ?? identity.name };
  // The token proves to the server that this browser owns its user_id: other tabs and
  // reconnects send it, so they are the same person rather than a copy with a suffix.
  if (typeof ack.token === 'string') {
    state.identity = { ...identity, user_id: state.me.user_id, token: ack.token };
    writeStorage(STORAGE_IDENTITY, state.identity);
  }
  state.registered = true;
  renderPresence();
  rememberCurrentRoom();
  els.passcodeField.hidden = true;
  if (els.nicknameDialog.open) els.nicknameDialog.close(); // its close handler focuses the input
}

function onWelcome(data) {
  if (!data || typeof data !== 'object') return;
  if (data.user_id != null) state.me = { user_id: data.user_id, name: data.name };
  state.registered = true;
  applyAssistant(data.assistant);
  setMembers(data.members);
  applySettings(data.settings);
  showBusy(data.busy ?? null);
  resumeStreams(data.busy?.partial);
  state.awaitingHistory = true;
  state.arrivedEarly.clear();
}

function onMessageList(list) {
  if (!Array.isArray(list)) return;
  if (!state.awaitingHistory) return list.forEach((msg) => showMessage(msg));
  state.awaitingHistory = false;
  rebuildTranscript(list);
}

export function emitMessage(msg) {
  return new Promise((resolve) => {
    socket.timeout(ACK_TIMEOUT_MS).emit('message', msg, (err, ack) => {
      if (err) resolve({ ok: false, error: 'The server did not answer in time. Please try again.' });
      else if (ack?.ok) resolve({ ok: true, id: ack.id ?? msg.id });
      else resolve({ ok: false, error: errorText(ack?.error, 'The message could not be sent.') });
    });
  });
}

// Send an event that expects an ack; resolves to {ok: true, …} or {ok: false, error}.
export function request(event, payload) {
  return new Promise((resolve) => {
    socket.timeout(ACK_TIMEOUT_MS).emit(event, payload, (err, ack) => {
      if (err) resolve({ ok: false, error: 'The server did not answer in time. Please try again.' });
      else if (ack?.ok) resolve(ack);
      else resolve({ ok: false, error: errorText(ack?.error, 'The server refused that.') });
    });
  });
}

export function stopTurn() {
  els.stopButton.disabled = true;
  socket.timeout(ACK_TIMEOUT_MS).emit('stop', {}, (err, ack) => {
    if (!err && ack?.ok) return;
    els.stopButton.disabled = false;
    showNotice(err ? 'The server did not answer the stop request.' : errorText(ack?.error, 'Could not stop the reply.'));
  });
}

export function connectSocket() {
  socket.on('connect', onConnect);
  socket.on('disconnect', onDisconnect);
  socket.on('connect_error', () => setBanner(true));
  socket.on('welcome', onWelcome);
  socket.on('message-list', onMessageList);
  socket.on('message', (msg) => showMessage(msg));
  socket.on('join', onJoin);
  socket.on('leave', onLeave);
  socket.on('presence', setMembers);
  socket.on('ai-start', onAiStart);
  socket.on('ai-end', onAiEnd);
  socket.on('ai-delta', onDelta);
  socket.on('ai-tool', onTool);
  socket.on('queue', onQueue);
  socket.on('room', applySettings);
  socket.on('typing', onTyping);
  socket.on('removed', onRemoved);
  socket.on('error', (data) => showNotice(errorText(data?.error, 'Something went wrong.')));
  setBanner(true);
  socket.connect();
}
