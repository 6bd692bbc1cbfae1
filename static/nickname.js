// The nickname dialog: shown until the server accepts a name, and again when it refuses one.

import { els, state, STORAGE_IDENTITY, writeStorage } from './page.js';
import { uuid } from './util.js';

export function openNicknameDialog(error = '') {
  els.nicknameInput.value = state.identity?.name ?? '';
  setNicknameError(error);
  if (!els.nicknameDialog.open) els.nicknameDialog.showModal();
  els.nicknameInput.focus();
  els.nicknameInput.select();
}

export function setNicknameError(text) { els.nicknameError.textContent = text; }

// A locked room refused us: the same dialog asks for the passcode too, and keeps asking until it
// is right (the server says which: none given, or a wrong one).
export function openPasscodePrompt(error) {
  openNicknameDialog(error);
  els.passcodeField.hidden = false;
  els.passcodeInput.value = '';
  els.passcodeInput.focus();
}

// `join` registers the chosen identity (main.js passes it in: the socket module imports this one).
export function initNickname(join) {
  els.nicknameForm.addEventListener('submit', (event) => {
    event.preventDefault(); // stay open until the server accepts the name
    const name = els.nicknameInput.value.trim();
    if (!name) return setNicknameError('Please enter a nickname.');
    if (!els.passcodeField.hidden) state.passcode = els.passcodeInput.value;
    state.identity = { ...state.identity, user_id: state.identity?.user_id ?? uuid(), name };
    writeStorage(STORAGE_IDENTITY, state.identity);
    setNicknameError('');
    join(state.identity);
  });
  // Escape must not leave someone in the room without a name.
  els.nicknameDialog.addEventListener('cancel', (event) => {
    if (!state.registered) event.preventDefault();
  });
  els.nicknameDialog.addEventListener('close', () => els.messageInput.focus());
}
