// Messages that arrive while nobody is looking: a count in the tab's title while the tab is hidden
// or the reader has scrolled up, and a "New messages ↓" pill that takes them back down.

import { els, state } from './page.js';
import { updateTitle } from './room.js';
import { countsAsUnread } from './store.js';

function render() {
  const count = state.unread;
  els.newMessages.hidden = !(count > 0 && !state.pinned);
  els.newMessages.textContent = count === 1 ? '1 new message ↓' : `${count} new messages ↓`;
  updateTitle();
}

// Called for each message that appears (not the history replayed on joining).
export function noteArrival(msg) {
  if (!countsAsUnread(msg, { me: state.me, hidden: document.hidden, pinned: state.pinned })) return;
  state.unread += 1;
  render();
}

// Seen: the reader is at the bottom of a visible tab.
function markSeen() {
  if (document.hidden || !state.pinned || !state.unread) return render();
  state.unread = 0;
  render();
}

export function initUnread() {
  els.transcript.addEventListener('scroll', markSeen, { passive: true });
  document.addEventListener('visibilitychange', markSeen);
  els.newMessages.addEventListener('click', () => {
    els.transcript.scrollTop = els.transcript.scrollHeight;
    state.pinned = true;
    markSeen();
    els.messageInput.focus();
  });
}
