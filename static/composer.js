// The message box: the character counter, Enter to send, the "Stream replies" switch, Stop.

import { mentionKey } from './autocomplete.js';
import { clearReplyTo, showReplyTo } from './msgtools.js';
import { openNicknameDialog } from './nickname.js';
import { config, els, readStorage, state, STORAGE_STREAM, writeStorage } from './page.js';
import { emitMessage, socket, stopTurn } from './socket.js';
import { draftProblem } from './store.js';
import { postStream } from './stream.js';
import { acceptPending, addPending, dropPending, showNotice } from './transcript.js';
import { stopTyping } from './typing.js';
import { charCount, uuid } from './util.js';

const maxChars = Number(config.max_message_chars) || 4000;

function updateCounter() {
  const count = charCount(els.messageInput.value);
  els.charCounter.textContent = `${count} / ${maxChars}`;
  els.charCounter.classList.toggle('near', count > maxChars * 0.9 && count <= maxChars);
  els.charCounter.classList.toggle('over', count > maxChars);
}

// The box empties at once, so the next message can be typed while this one is on its way (a /stream
// request only answers once the server starts streaming). A refused message comes back into the box.
async function send() {
  const content = els.messageInput.value.trim();
  const connected = state.registered && socket.connected;
  const problem = draftProblem(content, { identity: state.identity, connected, maxChars });
  if (!state.identity) openNicknameDialog(); // the dialog was dismissed (a second Escape can force it shut)
  if (problem) return showNotice(problem);
  showNotice('');
  const { user_id: userId, name } = state.me;
  const msg = { id: uuid(), content, user_id: userId, name, role: 'user', created_at: Date.now() };
  const replyTo = state.replyTo;
  if (replyTo) msg.reply_to = replyTo.id;
  addPending(msg);
  setDraft('');
  stopTyping();
  clearReplyTo();
  const result = els.streamToggle.checked ? await postStream(msg) : await emitMessage(msg);
  if (result.ok) return acceptPending(msg.id, result.id);
  dropPending(msg.id);
  if (!els.messageInput.value.trim()) {
    setDraft(content); // to fix or resend, still as a reply if it was one
    if (replyTo && !state.replyTo) showReplyTo(replyTo);
  }
  showNotice(result.error);
}

function setDraft(text) {
  els.messageInput.value = text;
  updateCounter();
}

function onInputKey(event) {
  if (mentionKey(event)) return; // the @mention list is open and took the key
  // Enter sends; Shift+Enter is a new line; Enter that confirms an IME composition is neither.
  if (event.key !== 'Enter' || event.shiftKey || event.isComposing) return;
  event.preventDefault();
  send();
}

export function initComposer() {
  const remembered = readStorage(STORAGE_STREAM);
  els.streamToggle.checked = typeof remembered === 'boolean' ? remembered : Boolean(config.stream_default);
  els.streamToggle.addEventListener('change', () => writeStorage(STORAGE_STREAM, els.streamToggle.checked));
  els.composer.addEventListener('submit', (event) => { event.preventDefault(); send(); });
  els.messageInput.addEventListener('keydown', onInputKey);
  els.messageInput.addEventListener('input', () => {
    updateCounter();
    if (els.composerError.textContent) showNotice('');
  });
  els.stopButton.addEventListener('click', stopTurn);
  updateCounter();
}
