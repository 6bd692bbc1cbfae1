// The @mention list under the message box: the assistant's name and the people present that match
// what follows "@". Keyboard first: arrows move, Enter or Tab picks, Escape closes; the box keeps
// the focus throughout (aria-activedescendant points at the highlighted name).

import { mentionAt, mentionCandidates, insertMention, moveIndex } from './mentions.js';
import { els, make, state } from './page.js';

let open = null; // {mention, names, index} while the list is shown

function names() {
  const meId = state.me?.user_id;
  return [state.assistant.name, ...state.members.filter((m) => m.user_id !== meId).map((m) => m.name)];
}

export function updateMentions() {
  const box = els.messageInput;
  const mention = box.selectionStart === box.selectionEnd ? mentionAt(box.value, box.selectionStart) : null;
  const found = mention ? mentionCandidates(mention.query, names()) : [];
  if (!found.length) return closeMentions();
  const index = open && open.names[open.index] ? Math.max(0, found.indexOf(open.names[open.index])) : 0;
  open = { mention, names: found, index };
  render();
}

function render() {
  const items = open.names.map((name, i) => {
    const item = make('li', 'mention-option', `@${name}`);
    item.id = `mention-option-${i}`;
    item.setAttribute('role', 'option');
    item.setAttribute('aria-selected', String(i === open.index));
    // mousedown, not click: the box must not lose the focus (and close the list) first.
    item.addEventListener('mousedown', (event) => { event.preventDefault(); pick(i); });
    return item;
  });
  els.mentionList.replaceChildren(...items);
  els.mentionList.hidden = false;
  els.messageInput.setAttribute('aria-activedescendant', `mention-option-${open.index}`);
}

export function closeMentions() {
  open = null;
  els.mentionList.hidden = true;
  els.mentionList.replaceChildren();
  els.messageInput.removeAttribute('aria-activedescendant');
}

function pick(index) {
  const box = els.messageInput;
  const { text, caret } = insertMention(box.value, open.mention, open.names[index]);
  box.value = text;
  box.setSelectionRange(caret, caret);
  closeMentions();
  box.dispatchEvent(new Event('input', { bubbles: true })); // the counter and typing hear it
}

// Returns true when the key was the list's (the composer must then not send).
export function mentionKey(event) {
  if (!open || event.isComposing) return false;
  const moves = { ArrowDown: 1, ArrowUp: -1 };
  if (event.key in moves) {
    open.index = moveIndex(open.index, moves[event.key], open.names.length);
    render();
  } else if ((event.key === 'Enter' || event.key === 'Tab') && !event.shiftKey) { // Shift+Tab still leaves
    pick(open.index);
  } else if (event.key === 'Escape') {
    closeMentions();
  } else {
    return false;
  }
  event.preventDefault();
  return true;
}

export function initMentions() {
  const box = els.messageInput;
  box.addEventListener('input', updateMentions);
  box.addEventListener('click', updateMentions);
  box.addEventListener('keyup', (event) => {
    if (event.key === 'ArrowLeft' || event.key === 'ArrowRight' || event.key === 'Home' || event.key === 'End') {
      updateMentions();
    }
  });
  box.addEventListener('blur', closeMentions);
}
