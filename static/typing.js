// "X is typing…": tell the room while we type (at most every few seconds, the server throttles
// too), say we stopped on send, blur or an emptied box; show who else is typing, and forget a
// typist we have not heard from for a few seconds (their "stopped" may never come: a closed tab).

import { els, state } from './page.js';
import { socket } from './socket.js';
import { activeTypists, TYPING_TTL_MS, typingText } from './store.js';

const REPEAT_MS = 3000; // the server passes one "typing" per person per 3 s
let sentAt = 0; // when we last said we are typing (0: we have not, or said we stopped)
let pruneTimer = 0;

function sendTyping(typing) {
  if (!state.registered || !socket.connected) return;
  socket.emit('typing', { typing });
}

// Called on each input in the message box.
export function noteTyping() {
  if (!els.messageInput.value.trim()) return stopTyping();
  const now = Date.now();
  if (now - sentAt < REPEAT_MS) return;
  sentAt = now;
  sendTyping(true);
}

export function stopTyping() {
  if (!sentAt) return;
  sentAt = 0;
  sendTyping(false);
}

function render() {
  const names = activeTypists(state.typists, Date.now());
  els.typingLine.textContent = typingText(names);
  clearInterval(pruneTimer);
  pruneTimer = names.length ? setInterval(prune, 1000) : 0;
}

function prune() {
  const now = Date.now();
  for (const [id, t] of state.typists) if (now - t.at >= TYPING_TTL_MS) state.typists.delete(id);
  render();
}

export function onTyping(data) {
  if (!data || typeof data.name !== 'string' || data.user_id == null) return;
  if (data.user_id === state.me?.user_id) return; // another tab of ours
  if (data.typing) {
    state.typists.set(data.user_id, { name: data.name, at: Date.now() }); // keeps its place in the Map
  } else {
    state.typists.delete(data.user_id);
  }
  render();
}

export function clearTypist(userId) {
  if (state.typists.delete(userId)) render();
}

export function initTyping() {
  els.messageInput.addEventListener('input', noteTyping);
  els.messageInput.addEventListener('blur', stopTyping);
}
