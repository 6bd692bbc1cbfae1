// The page's singletons: its settings (the JSON bootstrap block), its elements, its storage and
// its state. Every browser-side module takes them from here.

import { createState, roomFromSearch, validIdentity } from './store.js';

export const config = JSON.parse(document.getElementById('bootstrap').textContent);
export const STORAGE_IDENTITY = 'threadroom.identity';
export const STORAGE_STREAM = 'threadroom.stream';

// Every element the modules touch, by id: 'message-input' becomes els.messageInput.
export const els = Object.fromEntries(
  [
    'assistant-name', 'model-badge', 'presence-count', 'presence-list', 'connection-banner',
    'transcript', 'activity', 'busy-text', 'stop-button', 'tool-list', 'composer', 'message-input',
    'stream-toggle', 'char-counter', 'send-button', 'composer-error', 'nickname-dialog',
    'nickname-form', 'nickname-input', 'nickname-error',
  ].map((id) => [id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), document.getElementById(id)]),
);

// Storage can throw (disabled cookies, some private modes): then the page works but forgets.
export function readStorage(key) {
  try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
}

export function writeStorage(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* not remembered */ }
}

export const state = createState({
  config,
  identity: validIdentity(readStorage(STORAGE_IDENTITY)),
  room: roomFromSearch(location.search),
});

export function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}
