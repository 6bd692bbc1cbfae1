// The page's singletons: its settings (the JSON bootstrap block), its elements, its storage and
// its state. Every browser-side module takes them from here.

import { parseRoomParam } from './roomnames.js';
import { createState, validIdentity } from './store.js';

export const config = JSON.parse(document.getElementById('bootstrap').textContent);
export const STORAGE_IDENTITY = 'threadroom.identity';
export const STORAGE_STREAM = 'threadroom.stream';
export const STORAGE_ROOMS = 'threadroom.rooms';

// Every element the modules touch, by id: 'message-input' becomes els.messageInput.
export const els = Object.fromEntries(
  [
    'assistant-name', 'model-badge', 'presence-count', 'presence-list', 'connection-banner',
    'transcript', 'activity', 'busy-text', 'stop-button', 'tool-list', 'composer', 'message-input',
    'stream-toggle', 'char-counter', 'send-button', 'composer-error', 'nickname-dialog',
    'nickname-form', 'nickname-input', 'nickname-error', 'passcode-field', 'passcode-input',
    'room-name', 'room-lock', 'answer-mode', 'invite-button', 'rooms-menu', 'recent-rooms',
    'new-room-form', 'new-room-input', 'new-room-error', 'export-button', 'settings-button',
    'room-instructions', 'room-instructions-text', 'room-status', 'room-problem', 'room-problem-text',
    'room-problem-suggestion', 'removed-notice', 'removed-text', 'new-messages', 'typing-line',
    'reply-preview', 'reply-preview-text', 'reply-cancel', 'mention-list', 'settings-dialog',
    'settings-form', 'settings-name', 'settings-instructions', 'settings-passcode',
    'settings-lock-state', 'settings-unlock', 'settings-unlock-row', 'settings-error', 'settings-cancel',
  ].map((id) => [id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), document.getElementById(id)]),
);

// Storage can throw (disabled cookies, some private modes): then the page works but forgets.
export function readStorage(key) {
  try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
}

export function writeStorage(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* not remembered */ }
}

// ?room= that the server would refuse is explained on the page (header.js), never swapped for the lobby.
export const asked = parseRoomParam(location.search);

export const state = createState({
  config,
  identity: validIdentity(readStorage(STORAGE_IDENTITY)),
  room: asked.room,
});

export function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

// The clipboard API needs a secure context (https, or localhost); elsewhere a hidden, selected
// textarea and the older copy command still work in every browser the page supports.
export async function copyText(text) {
  try {
    await navigator.clipboard.writeText(text);
    return true;
  } catch {
    const area = make('textarea', 'visually-hidden');
    area.value = text;
    document.body.append(area);
    area.select();
    const done = document.execCommand('copy');
    area.remove();
    return done;
  }
}

// A button says what it did ("Copied") for a moment, then what it does again.
export function flashLabel(button, text, ms = 2000) {
  const label = button.dataset.label ?? button.textContent;
  button.dataset.label = label;
  button.textContent = text;
  clearTimeout(Number(button.dataset.timer));
  button.dataset.timer = String(setTimeout(() => { button.textContent = label; }, ms));
}
