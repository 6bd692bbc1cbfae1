// The room's owner and what follows from them: the room's settings as everyone sees them, the
// settings dialog and the "Remove" buttons (shown to the owner only), and the notice a removed
// person gets.

import { renderRoomBar } from './header.js';
import { els, state } from './page.js';
import { applyAssistant, renderPresence } from './room.js';
import { request } from './socket.js';
import { isRoomOwner, settingsChanges } from './store.js';
import { showNotice } from './transcript.js';

const SETTING_KEYS = ['owner', 'answer_mode', 'assistant_name', 'instructions', 'stop_policy', 'locked'];

// welcome and room carry the same settings object; anything malformed is ignored as a whole.
export function applySettings(settings) {
  if (!settings || typeof settings !== 'object' || !SETTING_KEYS.every((k) => k in settings)) return;
  state.settings = settings;
  if (settings.assistant_name && settings.assistant_name !== state.assistant.name) {
    applyAssistant({ name: settings.assistant_name });
  }
  els.settingsButton.hidden = !isRoomOwner(settings, state.me);
  if (els.settingsButton.hidden && els.settingsDialog.open) els.settingsDialog.close();
  renderRoomBar();
  renderPresence();
}

export const amOwner = () => isRoomOwner(state.settings, state.me);

// Confirmed first: removing someone keeps them out for a while, and a stray click must not.
export async function removePerson(member) {
  if (!confirm(`Remove ${member.name} from the room? They will not be able to come back for a while.`)) return;
  const ack = await request('remove', { user_id: member.user_id });
  if (!ack.ok) showNotice(ack.error);
}

function fillSettingsForm() {
  const s = state.settings;
  const form = els.settingsForm.elements;
  form.answer_mode.value = s.answer_mode;
  form.stop_policy.value = s.stop_policy;
  els.settingsName.value = s.assistant_name;
  els.settingsInstructions.value = s.instructions;
  els.settingsPasscode.value = '';
  els.settingsUnlock.checked = false;
  els.settingsUnlockRow.hidden = !s.locked;
  els.settingsLockState.textContent = s.locked
    ? 'The room is locked: newcomers need the passcode. A new one (4-64 characters) replaces it.'
    : 'The room is open: anyone with the link can join. A passcode (4-64 characters) locks it.';
  els.settingsError.textContent = '';
}

async function saveSettings(event) {
  event.preventDefault();
  const form = els.settingsForm.elements;
  const changes = settingsChanges(state.settings, {
    answer_mode: form.answer_mode.value,
    stop_policy: form.stop_policy.value,
    assistant_name: els.settingsName.value.trim(),
    instructions: els.settingsInstructions.value.trim(),
    passcode: els.settingsPasscode.value,
    unlock: els.settingsUnlock.checked,
  });
  if (!Object.keys(changes).length) return els.settingsDialog.close();
  const ack = await request('room-settings', changes);
  if (!ack.ok) {
    els.settingsError.textContent = ack.error;
    return;
  }
  applySettings(ack.settings);
  els.settingsDialog.close();
}

// The owner removed us: out of the room until `until`; the socket stays, but nothing here works.
export function onRemoved(data) {
  if (!data || typeof data !== 'object') return;
  state.removed = data;
  state.registered = false;
  const until = Number.isFinite(data.until) ? new Date(data.until) : null;
  const when = until ? new Intl.DateTimeFormat(undefined, { timeStyle: 'short' }).format(until) : 'a while';
  const by = typeof data.by === 'string' ? data.by : "The room's owner";
  els.removedText.textContent = `${by} removed you from #${data.room ?? state.room}. You can come back after ${when}.`;
  els.removedNotice.hidden = false;
  els.messageInput.disabled = true; // and hidden: nothing can be sent here any more
  for (const el of [els.inviteButton, els.exportButton, els.settingsButton, els.activity, els.composer]) {
    el.hidden = true;
  }
  state.members = [];
  renderPresence();
}

export function initOwner() {
  els.settingsButton.addEventListener('click', () => {
    fillSettingsForm();
    els.settingsDialog.showModal();
  });
  els.settingsForm.addEventListener('submit', saveSettings);
  els.settingsCancel.addEventListener('click', () => els.settingsDialog.close());
  els.settingsDialog.addEventListener('close', () => els.settingsButton.focus());
}
