// The conversation log: messages, system lines, streaming bubbles, pending and waiting marks,
// and scrolling that follows the conversation only while the reader is at the bottom.

import { renderMarkdown } from './markdown.js';
import { decorateCode, decorateMessage, refreshRegenerate } from './msgtools.js';
import { els, make, state } from './page.js';
import {
  END_NOTES, continuedText, isOwn, partialReplies, planRebuild, resumedText, stoppedNote, version, waitingNote,
} from './store.js';
import { clearTypist } from './typing.js';
import { noteArrival } from './unread.js';
import { isMessage } from './util.js';

const NEAR_BOTTOM_PX = 96;

/* ---------------------------------------------------------------- building messages */

function formatTime(ms) {
  const date = new Date(Number.isFinite(ms) ? ms : Date.now());
  const today = new Date().toDateString() === date.toDateString();
  const options = today ? { timeStyle: 'short' } : { dateStyle: 'medium', timeStyle: 'short' };
  return { iso: date.toISOString(), label: new Intl.DateTimeFormat(undefined, options).format(date) };
}

function buildTime(ms) {
  const { iso, label } = formatTime(ms);
  const time = make('time', 'msg-time', label);
  time.dateTime = iso;
  return time;
}

function buildNote(text, extraClass = '') { return make('p', `msg-note ${extraClass}`.trim(), text); }

function buildMessage(msg, { streaming = false } = {}) {
  if (msg.role === 'system') return buildSystemLine(msg);
  const role = msg.role === 'assistant' ? 'assistant' : 'user';
  const own = isOwn(msg, state.me || state.identity);
  const replaced = role === 'assistant' && msg.status === 'replaced';
  const node = make('article', `msg msg-${role}${own ? ' msg-own' : ''}${replaced ? ' msg-replaced' : ''}`);
  node.dataset.id = msg.id;
  node.dataset.version = version(msg);
  const meta = make('header', 'msg-meta');
  const name = role === 'assistant' ? msg.name || state.assistant.name : msg.name || 'Someone';
  meta.append(make('span', 'msg-name', name));
  if (own) meta.append(make('span', 'msg-you', '(you)'));
  meta.append(buildTime(msg.created_at));
  const body = make('div', 'msg-body');
  if (role === 'assistant') renderMarkdown(body, msg.content);
  else body.textContent = msg.content;
  node.append(meta, body);
  if (msg.status === 'stopped') node.append(buildStoppedNote(msg.stopped_by));
  // Written again by Regenerate: kept, marked, and set back so the newer reply stands out.
  else if (replaced) node.append(buildNote(END_NOTES.replaced, 'msg-replaced-note'));
  // A reply that failed, timed out or was cut by a restart says so, live and after a reload alike.
  else if (role === 'assistant' && END_NOTES[msg.status]) node.append(buildNote(END_NOTES[msg.status], 'msg-failed'));
  if (state.waiting.has(msg.id)) setWaiting(node, true);
  if (!streaming) decorateMessage(node, msg);
  return node;
}

function buildSystemLine(msg) {
  rememberSystemLine(msg.content);
  // A failure must not look like a join line: the server marks it level "error".
  const line = make('p', msg.level === 'error' ? 'msg-system msg-error' : 'msg-system');
  line.dataset.id = msg.id;
  line.dataset.version = version(msg);
  line.append(make('span', null, msg.content), ' ', buildTime(msg.created_at));
  return line;
}

function buildStoppedNote(stoppedBy) { return buildNote(stoppedNote(stoppedBy), 'msg-stopped'); }

/* ---------------------------------------------------------------- scrolling */

// Follow the conversation only while the reader is at the bottom; never yank them away from
// something they scrolled up to read. "At the bottom" is decided when they scroll, not when content
// arrives: the activity bar opening shrinks the transcript, which must not count as scrolling away.
function isNearBottom() {
  const t = els.transcript;
  return t.scrollHeight - t.scrollTop - t.clientHeight < NEAR_BOTTOM_PX;
}

function scrollToBottom() {
  els.transcript.scrollTop = els.transcript.scrollHeight;
  state.pinned = true;
}

function keepPinned(change, force = false) {
  change();
  if (force || state.pinned) scrollToBottom();
}

export function initScrolling() {
  els.transcript.addEventListener('scroll', () => { state.pinned = isNearBottom(); }, { passive: true });
  new ResizeObserver(() => state.pinned && scrollToBottom()).observe(els.transcript);
}

/* ---------------------------------------------------------------- showing messages */

export function showMessage(msg, { force = false } = {}) {
  if (!isMessage(msg)) return;
  const existing = state.shown.get(msg.id);
  // Already on screen as it is (our own message echoed back, or a duplicate): nothing to add.
  if (existing && !state.streams.has(msg.id) && existing.dataset.version === version(msg)) {
    return acceptPending(msg.id);
  }
  const node = buildMessage(msg);
  keepPinned(() => (existing ? existing.replaceWith(node) : els.transcript.append(node)), force);
  state.shown.set(msg.id, node);
  if (state.awaitingHistory) state.arrivedEarly.add(msg.id); // the history may not hold it
  state.streams.delete(msg.id); // the final message replaces its streaming bubble
  if (msg.role === 'assistant' && state.busy) state.turnIds.add(msg.id);
  if (msg.role === 'user') clearTypist(msg.user_id); // they sent what they were typing
  if (!existing) noteArrival(msg);
  refreshRegenerate();
}

export function rebuildTranscript(history) {
  const { messages, listed, kept } = planRebuild(history, state);
  const keptNodes = kept.map((id) => [id, state.shown.get(id)]);
  state.shown.clear();
  for (const id of listed) state.streams.delete(id);
  const nodes = messages.map((msg) => {
    const node = buildMessage(msg);
    state.shown.set(msg.id, node);
    return node;
  });
  for (const [id, node] of keptNodes) state.shown.set(id, node);
  state.arrivedEarly.clear();
  // Don't let a screen reader read the whole history out again: mute the log while refilling it.
  els.transcript.setAttribute('aria-live', 'off');
  keepPinned(() => els.transcript.replaceChildren(...nodes, ...keptNodes.map(([, n]) => n)), true);
  requestAnimationFrame(() => els.transcript.setAttribute('aria-live', 'polite'));
  if (!state.busy) settleStreams('interrupted');
  refreshRegenerate();
}

export function showEventLine(text) {
  keepPinned(() => els.transcript.append(make('p', 'msg-system msg-event', text)));
}

export function showNotice(text) { els.composerError.textContent = text; }

// A failed or stopped turn reaches the sender twice: as a system line in the transcript (everyone
// sees it) and as an error frame on its /stream request. Say it once, in the transcript.
function rememberSystemLine(text) {
  state.systemLines.add(text);
  if (els.composerError.textContent === text) showNotice('');
}

/* ---------------------------------------------------------------- streaming bubbles */

export function onDelta(data) {
  if (!data || data.id == null || typeof data.delta !== 'string') return;
  let stream = state.streams.get(data.id);
  if (!stream) {
    if (state.shown.has(data.id)) return; // a late delta for a reply already shown in full
    stream = createStream(data.id);
  }
  stream.text = continuedText(stream.text, data.delta, data.at);
  scheduleRender(stream);
}

// Joining (or coming back) while a reply is being written: show what is written so far; the deltas
// that follow continue it.
export function resumeStreams(partial) {
  for (const { id, text } of partialReplies(partial)) {
    const stream = state.streams.get(id) || createStream(id);
    stream.text = resumedText(stream.text, text);
    stream.settled = false;
    scheduleRender(stream);
  }
}

function createStream(id) {
  const node = buildMessage({ id, role: 'assistant', content: '', created_at: Date.now() }, { streaming: true });
  node.classList.add('msg-streaming');
  // aria-busy keeps screen readers from reading every token; the finished reply replaces this node
  // and is announced then.
  node.setAttribute('aria-busy', 'true');
  const stream = { id, el: node, body: node.querySelector('.msg-body'), text: '', frame: 0, settled: false };
  state.streams.set(id, stream);
  state.shown.set(id, node);
  state.turnIds.add(id);
  keepPinned(() => els.transcript.append(node));
  noteArrival({ role: 'assistant' });
  return stream;
}

// Re-render at most once per animation frame: re-parsing markdown per token is wasted work.
function scheduleRender(stream) {
  if (stream.frame) return;
  stream.frame = requestAnimationFrame(() => {
    stream.frame = 0;
    keepPinned(() => renderMarkdown(stream.body, stream.text));
  });
}

// The turn ended but no final message replaced these bubbles: stop showing them as in progress.
// They stay in state.streams so a final message that arrives later still replaces them.
export function settleStreams(status) {
  for (const stream of state.streams.values()) {
    if (stream.settled) continue;
    stream.settled = true;
    cancelAnimationFrame(stream.frame);
    stream.frame = 0;
    renderMarkdown(stream.body, stream.text);
    decorateCode(stream.body);
    stream.el.classList.remove('msg-streaming');
    stream.el.removeAttribute('aria-busy');
    if (END_NOTES[status]) stream.el.append(buildNote(END_NOTES[status], 'msg-failed'));
  }
}

export function markStopped(stoppedBy) {
  for (const id of state.turnIds) {
    const node = state.shown.get(id);
    if (node && !node.querySelector('.msg-stopped')) node.append(buildStoppedNote(stoppedBy));
  }
}

/* ---------------------------------------------------------------- waiting and pending */

export function setWaiting(node, on) {
  if (!node || node.classList.contains('msg-system')) return;
  node.classList.toggle('msg-waiting', on);
  const note = node.querySelector('.msg-waiting-note');
  if (on && !note) node.append(buildNote(waitingNote(state.assistant.name), 'msg-waiting-note'));
  if (!on && note) note.remove();
}

// Until the server accepts it, the message says so in words where its time will be: a faded bubble
// took its text below 4.5:1.
export function addPending(msg) {
  state.pending.add(msg.id);
  showMessage(msg, { force: true });
  const node = state.shown.get(msg.id);
  node?.classList.add('msg-pending');
  node?.querySelector('.msg-meta').append(make('span', 'msg-sending', 'Sending…'));
}

export function acceptPending(id, serverId = id) {
  const node = state.shown.get(id);
  state.pending.delete(id);
  node?.classList.remove('msg-pending');
  node?.querySelector('.msg-sending')?.remove();
  if (node && serverId !== id) {
    // The server renamed the message: re-key it so its history copy is recognised as the same one.
    state.shown.delete(id);
    state.shown.set(serverId, node);
    node.dataset.id = serverId;
  }
}

export function dropPending(id) {
  state.pending.delete(id);
  state.shown.get(id)?.remove();
  state.shown.delete(id);
}
