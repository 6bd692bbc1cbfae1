// The room bar under the header: which room this is, when the assistant answers, the room's
// instructions, the invite link, recent rooms and "New room", Export; and the notice shown
// instead of the room when ?room= is not a valid name.

import { asked, copyText, els, make, readStorage, state, STORAGE_ROOMS, writeStorage } from './page.js';
import {
  inviteUrl, LOBBY, randomRoomName, rememberRoom, ROOM_RULE, roomNameProblem, suggestRoomName, validRecent,
} from './roomnames.js';
import { answerModeText } from './store.js';
import { errorText } from './util.js';

const currentRoom = () => state.room || LOBBY;
let statusTimer = 0;

// What Copy invite link and Export did, said for a few seconds (a status region: read out too).
function say(text) {
  els.roomStatus.textContent = text;
  clearTimeout(statusTimer);
  statusTimer = setTimeout(() => { els.roomStatus.textContent = ''; }, 4000);
}

export function renderRoomBar() {
  const settings = state.settings;
  els.roomName.textContent = `#${currentRoom()}`;
  els.roomLock.hidden = !settings?.locked;
  els.answerMode.textContent = answerModeText(settings, state.assistant.name);
  els.answerMode.title = settings?.answer_mode === 'addressed'
    ? 'An @mention, a reply to one of its messages, or a question that names it'
    : '';
  const instructions = settings?.instructions || '';
  els.roomInstructionsText.textContent = instructions;
  els.roomInstructions.hidden = !instructions;
}

function renderRecent() {
  const recent = validRecent(readStorage(STORAGE_ROOMS));
  const items = recent.map(({ name }) => {
    const item = make('li');
    const link = make('a', null, `#${name}`);
    link.href = inviteUrl(location.href, name);
    if (name === currentRoom()) link.setAttribute('aria-current', 'page');
    item.append(link);
    return item;
  });
  if (!items.length) items.push(make('li', 'muted', 'None yet'));
  els.recentRooms.replaceChildren(...items);
}

// Called once the server has let us in: the room goes to the front of the recent list.
export function rememberCurrentRoom() {
  writeStorage(STORAGE_ROOMS, rememberRoom(readStorage(STORAGE_ROOMS), currentRoom(), Date.now()));
  renderRecent();
}

function openNewRoom(event) {
  event.preventDefault();
  const typed = els.newRoomInput.value.trim().toLowerCase();
  const name = typed || randomRoomName();
  const problem = typed ? roomNameProblem(typed) : null;
  els.newRoomError.textContent = problem || '';
  if (problem) return els.newRoomInput.focus();
  location.assign(inviteUrl(location.href, name));
}

async function copyInvite() {
  const done = await copyText(inviteUrl(location.href, currentRoom()));
  say(done ? 'Invite link copied.' : 'Could not copy the link; copy it from the address bar.');
}

// The server checks the identity token (the same proof the socket uses), so only members export.
async function exportTranscript() {
  const headers = { 'X-Threadroom-User-Id': state.me?.user_id ?? '', 'X-Threadroom-Token': state.identity?.token ?? '' };
  let response;
  try {
    response = await fetch(`export?room=${encodeURIComponent(currentRoom())}`, { headers });
  } catch {
    return say('Could not reach the server to export the conversation.');
  }
  if (!response.ok) {
    const body = await response.json().catch(() => null);
    return say(errorText(body?.error, `The export was refused (HTTP ${response.status}).`));
  }
  const disposition = response.headers.get('Content-Disposition') || '';
  const filename = /filename="([^"]+)"/.exec(disposition)?.[1] || `threadroom-${currentRoom()}.md`;
  const link = make('a');
  link.href = URL.createObjectURL(await response.blob());
  link.download = filename;
  document.body.append(link);
  link.click();
  link.remove();
  setTimeout(() => URL.revokeObjectURL(link.href), 10000);
  say(`Exported as ${filename}.`);
}

// ?room= that the server would refuse: say why and offer the nearest valid room and the lobby.
// Returns true when the page must not join anything.
export function explainInvalidRoom() {
  if (asked.invalid == null) return false;
  els.roomProblemText.textContent = `"${asked.invalid}" is not a room name. ${ROOM_RULE}`;
  const suggestion = suggestRoomName(asked.invalid);
  if (suggestion) {
    els.roomProblemSuggestion.href = inviteUrl(location.href, suggestion);
    els.roomProblemSuggestion.textContent = `Go to #${suggestion}`;
    els.roomProblemSuggestion.hidden = false;
  }
  els.roomProblem.hidden = false;
  els.roomName.textContent = 'No room';
  for (const el of [els.inviteButton, els.exportButton]) el.hidden = true;
  els.composer.hidden = true;
  document.querySelector('.chat').hidden = true;
  return true;
}

export function initRoomBar() {
  renderRoomBar();
  renderRecent();
  els.inviteButton.addEventListener('click', copyInvite);
  els.exportButton.addEventListener('click', exportTranscript);
  els.newRoomForm.addEventListener('submit', openNewRoom);
  els.newRoomInput.addEventListener('input', () => { els.newRoomError.textContent = ''; });
  els.roomsMenu.addEventListener('toggle', () => els.roomsMenu.open && renderRecent());
  // A click elsewhere closes the menu, as menus do.
  document.addEventListener('click', (event) => {
    if (els.roomsMenu.open && !els.roomsMenu.contains(event.target)) els.roomsMenu.open = false;
  });
  // Escape closes the menu and gives the focus back to its button.
  els.roomsMenu.addEventListener('keydown', (event) => {
    if (event.key !== 'Escape' || !els.roomsMenu.open) return;
    els.roomsMenu.open = false;
    els.roomsMenu.querySelector('summary').focus();
  });
}
