// Who is here and what the assistant is doing: the header, the presence list, the activity bar
// (busy text, Stop, tools in use) and the queue marks.

import { refreshRegenerate } from './msgtools.js';
import { amOwner, removePerson } from './owner.js';
import { els, make, state } from './page.js';
import { badgeText, busyText, pageTitle, planQueue, validMembers } from './store.js';
import { clearTypist } from './typing.js';
import { acceptPending, markStopped, setWaiting, settleStreams, showEventLine } from './transcript.js';
import { errorText, isMember } from './util.js';

export function applyAssistant(info) {
  if (!info || typeof info !== 'object') return;
  Object.assign(state.assistant, info);
  els.assistantName.textContent = state.assistant.name;
  els.modelBadge.textContent = badgeText(state.assistant);
  updateTitle();
}

export function updateTitle() {
  document.title = pageTitle(state.room, state.assistant.name, state.unread);
}

export function setMembers(members) {
  state.members = validMembers(members);
  renderPresence();
}

export function renderPresence() {
  const meId = state.me?.user_id;
  const owner = state.settings?.owner;
  const canRemove = amOwner();
  const items = state.members.map((m) => {
    const item = make('li', m.user_id === meId ? 'me' : null, m.name);
    if (m.user_id === meId) item.append(make('span', 'msg-you', ' (you)'));
    if (m.user_id === owner) item.append(make('span', 'owner-mark', ' (owner)'));
    if (canRemove && m.user_id !== meId) {
      const button = make('button', 'remove-button', 'Remove');
      button.type = 'button';
      button.setAttribute('aria-label', `Remove ${m.name}`);
      button.addEventListener('click', () => removePerson(m));
      item.append(' ', button);
    }
    return item;
  });
  els.presenceList.replaceChildren(...items);
  els.presenceCount.textContent = String(state.members.length);
}

export function onJoin(member) {
  if (!isMember(member)) return;
  if (!state.members.some((m) => m.user_id === member.user_id)) setMembers([...state.members, member]);
  if (member.user_id !== state.me?.user_id) showEventLine(`${member.name} joined`);
}

export function onLeave(member) {
  if (!isMember(member)) return;
  setMembers(state.members.filter((m) => m.user_id !== member.user_id));
  clearTypist(member.user_id);
  // Removed, we hear our own leave too (sent to the room before we are out of it): the notice
  // says it better.
  if (state.removed && member.user_id === state.me?.user_id) return;
  showEventLine(`${member.name} left`);
}

export function showBusy(busy) {
  state.busy = busy && typeof busy === 'object' ? busy : null;
  els.activity.hidden = !state.busy;
  if (!state.busy) return els.toolList.replaceChildren();
  els.busyText.textContent = busyText(state.assistant.name, state.busy);
  els.stopButton.disabled = false;
  refreshRegenerate();
}

export function onAiStart(data) {
  // The turn carries every message accepted so far, ours included.
  for (const id of [...state.pending]) acceptPending(id);
  state.turnIds.clear();
  els.toolList.replaceChildren();
  showBusy(data || {});
}

export function onAiEnd(data) {
  const status = data?.status;
  settleStreams(status);
  if (status === 'cancelled') markStopped(data.stopped_by);
  showBusy(null);
  state.turnIds.clear();
  refreshRegenerate();
}

export function onTool(data) {
  if (!data || typeof data.name !== 'string') return;
  if (data.status === 'done') {
    const running = [...els.toolList.children].find(
      (li) => li.dataset.tool === data.name && !li.classList.contains('done'),
    );
    if (running) {
      running.classList.add('done');
      running.append(make('span', 'tool-done', ' done'));
      return;
    }
  }
  const item = make('li', data.status === 'done' ? 'done' : null, errorText(data.label, `Using ${data.name}…`));
  item.dataset.tool = data.name;
  els.toolList.append(item);
}

export function onQueue(data) {
  const { accept, done, waiting } = planQueue(data, state);
  for (const id of accept) acceptPending(id);
  for (const id of done) setWaiting(state.shown.get(id), false);
  state.waiting = waiting;
  for (const id of waiting) setWaiting(state.shown.get(id), true);
}
