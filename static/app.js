// Threadroom page: many people, one shared conversation with one assistant.
// Sections: state · helpers · markdown · rendering · streaming bubbles · room activity ·
// socket protocol · /stream · input · nickname · start.
// Vendored globals (deferred classic scripts, see static/vendor/README.md): io, marked, DOMPurify.

/* ---------------------------------------------------------------- state */

const config = JSON.parse(document.getElementById('bootstrap').textContent);
const STORAGE_IDENTITY = 'threadroom.identity';
const STORAGE_STREAM = 'threadroom.stream';
const ACK_TIMEOUT_MS = 15000;
const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/; // the server's rule for room names
const NEAR_BOTTOM_PX = 96;

// Every element the script touches, by id: 'message-input' becomes els.messageInput.
const els = Object.fromEntries(
  [
    'assistant-name', 'model-badge', 'presence-count', 'presence-list', 'connection-banner',
    'transcript', 'activity', 'busy-text', 'stop-button', 'tool-list', 'composer', 'message-input',
    'stream-toggle', 'char-counter', 'send-button', 'composer-error', 'nickname-dialog',
    'nickname-form', 'nickname-input', 'nickname-error',
  ].map((id) => [id.replace(/-(\w)/g, (_, c) => c.toUpperCase()), document.getElementById(id)]),
);

const state = {
  identity: loadIdentity(), // {user_id, name}: what this browser asks to be
  room: roomFromAddress(), // ?room=name, else null (the server's default room)
  me: null, // {user_id, name}: what the server registered (the name may carry a suffix)
  registered: false,
  everConnected: false,
  assistant: { name: config.assistant_name, backend: config.backend, model: config.model, is_demo: config.is_demo },
  members: [],
  busy: null, // {turn, replying_to} between ai-start and ai-end
  awaitingHistory: false, // the message-list right after welcome is the full history
  arrivedEarly: new Set(), // ids shown after welcome but before the history: keep them
  systemLines: new Set(), // texts of system lines shown, so an error frame repeating one is not shown twice
  shown: new Map(), // message id -> its element in the transcript (the dedupe key)
  streams: new Map(), // assistant message id -> streaming bubble {id, el, body, text, frame, settled}
  turnIds: new Set(), // assistant message ids seen during the current turn
  pending: new Set(), // own message ids sent but not yet accepted
  waiting: new Set(), // message ids the server lists as queued for the assistant
  pinned: true, // the reader is at the bottom of the transcript, so new content scrolls into view
};

/* ---------------------------------------------------------------- helpers */

// Storage can throw (disabled cookies, some private modes): then the page works but forgets.
function readStorage(key) {
  try { return JSON.parse(localStorage.getItem(key)); } catch { return null; }
}

function writeStorage(key, value) {
  try { localStorage.setItem(key, JSON.stringify(value)); } catch { /* not remembered */ }
}

function loadIdentity() {
  const saved = readStorage(STORAGE_IDENTITY);
  // Anything else under this key (an old format, a hand edit) means: ask for a nickname again.
  return typeof saved?.user_id === 'string' && typeof saved?.name === 'string' ? saved : null;
}

// ?room=name picks a room; anything the server would refuse falls back to the default room.
function roomFromAddress() {
  const room = (new URLSearchParams(location.search).get('room') || '').trim().toLowerCase();
  return ROOM_PATTERN.test(room) ? room : null;
}

function uuid() {
  if (crypto.randomUUID) return crypto.randomUUID();
  // randomUUID only exists in secure contexts; plain http on a LAN address still needs ids.
  const b = crypto.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}

function make(tag, className, text) {
  const node = document.createElement(tag);
  if (className) node.className = className;
  if (text != null) node.textContent = text;
  return node;
}

// Count code points, as the server (Python len) does, so emoji are not counted twice.
const charCount = (text) => Array.from(text).length;

const listNames = (names) =>
  new Intl.ListFormat('en', { style: 'long', type: 'conjunction' }).format(names);

const errorText = (error, fallback) => (typeof error === 'string' && error.trim() ? error : fallback);

function isMessage(msg) {
  return msg && typeof msg === 'object' && msg.id != null && typeof msg.content === 'string';
}

function isOwn(msg) {
  const me = state.me || state.identity;
  return msg.role === 'user' && Boolean(me) && msg.user_id === me.user_id;
}

/* ---------------------------------------------------------------- markdown */

const markdown = new marked.Marked({ gfm: true, breaks: true, async: false });
// Raw HTML in a reply is shown as the text it is: a model quoting someone's "<img onerror=…>" or
// "<script>" must show those characters, not a (sanitized) broken image.
markdown.use({ renderer: { html: ({ text }) => escapeHtml(text) } });
const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
function escapeHtml(text) { return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]); }
const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  // No styles or form controls from model output: they could restyle or imitate the page itself.
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'dialog'],
  FORBID_ATTR: ['style', 'srcset'],
};

DOMPurify.addHook('afterSanitizeAttributes', (node) => {
  if (node.tagName === 'A' && node.hasAttribute('href')) {
    node.setAttribute('target', '_blank');
    node.setAttribute('rel', 'noopener noreferrer');
  }
  // Images only from this origin: a remote image would leak readers' addresses to anyone.
  if (node.tagName === 'IMG' && !isSameOrigin(node.getAttribute('src'))) node.removeAttribute('src');
});

function isSameOrigin(src) {
  try { return new URL(src, location.href).origin === location.origin; } catch { return false; }
}

function renderMarkdown(target, text) {
  // The one innerHTML in this file: marked's output, always through DOMPurify first.
  target.innerHTML = DOMPurify.sanitize(markdown.parse(text || ''), PURIFY_OPTIONS);
  // An image that lost its remote address would show as a broken icon: show its description.
  for (const img of target.querySelectorAll('img:not([src])')) {
    img.replaceWith(img.alt ? `[image: ${img.alt}]` : '[image]');
  }
}

/* ---------------------------------------------------------------- rendering */

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

function buildMessage(msg) {
  if (msg.role === 'system') return buildSystemLine(msg);
  const role = msg.role === 'assistant' ? 'assistant' : 'user';
  const own = isOwn(msg);
  const node = make('article', `msg msg-${role}${own ? ' msg-own' : ''}`);
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
  // A reply that failed, timed out or was cut by a restart says so, live and after a reload alike.
  else if (role === 'assistant' && END_NOTES[msg.status]) node.append(buildNote(END_NOTES[msg.status], 'msg-failed'));
  if (state.waiting.has(msg.id)) setWaiting(node, true);
  return node;
}

// What can change in a message already shown: an assistant reply cut short, then stopped.
function version(msg) {
  return msg.role === 'assistant' ? `${msg.status ?? ''}:${charCount(msg.content)}` : '';
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

function buildStoppedNote(stoppedBy) {
  const who = stoppedBy && typeof stoppedBy.name === 'string' ? stoppedBy.name : 'someone';
  return buildNote(`Stopped by ${who}`, 'msg-stopped');
}

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

function initScrolling() {
  els.transcript.addEventListener('scroll', () => { state.pinned = isNearBottom(); }, { passive: true });
  new ResizeObserver(() => state.pinned && scrollToBottom()).observe(els.transcript);
}

function showMessage(msg, { force = false } = {}) {
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
}

function rebuildTranscript(history) {
  // A reply being written is in the history too, cut wherever it was when the server read it. The
  // streaming bubble (started from welcome's partial text, continued by the deltas) stands for it.
  const live = state.busy ? state.streams : new Map();
  const messages = history.filter((m) => isMessage(m) && !(m.role === 'assistant' && live.has(m.id)));
  const ids = new Set(messages.map((m) => m.id));
  // Keep what the history cannot know yet: replies still streaming, own messages not yet accepted.
  // And messages broadcast while the server was reading the history for us.
  const kept = [...state.streams.keys(), ...state.pending, ...state.arrivedEarly]
    .filter((id) => !ids.has(id))
    .map((id) => [id, state.shown.get(id)])
    .filter(([, node]) => node);
  state.shown.clear();
  for (const id of ids) state.streams.delete(id);
  const nodes = [];
  for (const msg of messages) {
    if (state.shown.has(msg.id)) continue; // dedupe by id
    const node = buildMessage(msg);
    state.shown.set(msg.id, node);
    nodes.push(node);
  }
  for (const [id, node] of kept) state.shown.set(id, node);
  state.arrivedEarly.clear();
  // Don't let a screen reader read the whole history out again: mute the log while refilling it.
  els.transcript.setAttribute('aria-live', 'off');
  keepPinned(() => els.transcript.replaceChildren(...nodes, ...kept.map(([, n]) => n)), true);
  requestAnimationFrame(() => els.transcript.setAttribute('aria-live', 'polite'));
  if (!state.busy) settleStreams('interrupted');
}

function showEventLine(text) {
  keepPinned(() => els.transcript.append(make('p', 'msg-system msg-event', text)));
}

function showNotice(text) { els.composerError.textContent = text; }

// A failed or stopped turn reaches the sender twice: as a system line in the transcript (everyone
// sees it) and as an error frame on its /stream request. Say it once, in the transcript.
function rememberSystemLine(text) {
  state.systemLines.add(text);
  if (els.composerError.textContent === text) showNotice('');
}

/* ---------------------------------------------------------------- streaming bubbles */

function onDelta(data) {
  if (!data || data.id == null || typeof data.delta !== 'string') return;
  let stream = state.streams.get(data.id);
  if (!stream) {
    if (state.shown.has(data.id)) return; // a late delta for a reply already shown in full
    stream = createStream(data.id);
  }
  stream.text += data.delta;
  scheduleRender(stream);
}

// Joining (or coming back) while a reply is being written: show what is written so far; the deltas
// that follow continue it.
function resumeStreams(partial) {
  if (!Array.isArray(partial)) return;
  for (const { id, text } of partial) {
    if (id == null || typeof text !== 'string') continue;
    const stream = state.streams.get(id) || createStream(id);
    if (text.length >= stream.text.length) stream.text = text;
    stream.settled = false;
    scheduleRender(stream);
  }
}

function createStream(id) {
  const node = buildMessage({ id, role: 'assistant', content: '', created_at: Date.now() });
  node.classList.add('msg-streaming');
  // aria-busy keeps screen readers from reading every token; the finished reply replaces this node
  // and is announced then.
  node.setAttribute('aria-busy', 'true');
  const stream = { id, el: node, body: node.querySelector('.msg-body'), text: '', frame: 0, settled: false };
  state.streams.set(id, stream);
  state.shown.set(id, node);
  state.turnIds.add(id);
  keepPinned(() => els.transcript.append(node));
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

const END_NOTES = {
  failed: 'The reply failed.',
  expired: 'The reply expired.',
  timeout: 'The reply took too long and was stopped.',
  interrupted: 'The reply was interrupted.',
};

// The turn ended but no final message replaced these bubbles: stop showing them as in progress.
// They stay in state.streams so a final message that arrives later still replaces them.
function settleStreams(status) {
  for (const stream of state.streams.values()) {
    if (stream.settled) continue;
    stream.settled = true;
    cancelAnimationFrame(stream.frame);
    stream.frame = 0;
    renderMarkdown(stream.body, stream.text);
    stream.el.classList.remove('msg-streaming');
    stream.el.removeAttribute('aria-busy');
    if (END_NOTES[status]) stream.el.append(buildNote(END_NOTES[status], 'msg-failed'));
  }
}

function markStopped(stoppedBy) {
  for (const id of state.turnIds) {
    const node = state.shown.get(id);
    if (node && !node.querySelector('.msg-stopped')) node.append(buildStoppedNote(stoppedBy));
  }
}

/* ---------------------------------------------------------------- room activity */

function applyAssistant(info) {
  if (!info || typeof info !== 'object') return;
  Object.assign(state.assistant, info);
  const { name, backend, model, is_demo: isDemo } = state.assistant;
  els.assistantName.textContent = name;
  els.modelBadge.textContent = isDemo ? 'Offline demo model' : [backend, model].filter(Boolean).join(' · ');
  document.title = ['Threadroom', state.room && `#${state.room}`, name].filter(Boolean).join(' · ');
}

function isMember(m) {
  return m && typeof m === 'object' && m.user_id != null && typeof m.name === 'string';
}

function setMembers(members) {
  state.members = Array.isArray(members) ? members.filter(isMember) : [];
  renderPresence();
}

function renderPresence() {
  const meId = state.me?.user_id;
  const items = state.members.map((m) => {
    const item = make('li', m.user_id === meId ? 'me' : null, m.name);
    if (m.user_id === meId) item.append(make('span', 'msg-you', ' (you)'));
    return item;
  });
  els.presenceList.replaceChildren(...items);
  els.presenceCount.textContent = String(state.members.length);
}

function onJoin(member) {
  if (!isMember(member)) return;
  if (!state.members.some((m) => m.user_id === member.user_id)) setMembers([...state.members, member]);
  if (member.user_id !== state.me?.user_id) showEventLine(`${member.name} joined`);
}

function onLeave(member) {
  if (!isMember(member)) return;
  setMembers(state.members.filter((m) => m.user_id !== member.user_id));
  showEventLine(`${member.name} left`);
}

function showBusy(busy) {
  state.busy = busy && typeof busy === 'object' ? busy : null;
  els.activity.hidden = !state.busy;
  if (!state.busy) return els.toolList.replaceChildren();
  const names = Array.isArray(busy.replying_to) ? busy.replying_to.filter((n) => typeof n === 'string') : [];
  const who = state.assistant.name;
  els.busyText.textContent = names.length ? `${who} is answering ${listNames(names)}…` : `${who} is answering…`;
  els.stopButton.disabled = false;
}

function onAiStart(data) {
  // The turn carries every message accepted so far, ours included.
  for (const id of [...state.pending]) acceptPending(id);
  state.turnIds.clear();
  els.toolList.replaceChildren();
  showBusy(data || {});
}

function onAiEnd(data) {
  const status = data?.status;
  settleStreams(status);
  if (status === 'cancelled') markStopped(data.stopped_by);
  showBusy(null);
  state.turnIds.clear();
}

function onTool(data) {
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

function onQueue(data) {
  const next = new Set(Array.isArray(data?.waiting) ? data.waiting : []);
  for (const id of next) if (state.pending.has(id)) acceptPending(id);
  for (const id of state.waiting) if (!next.has(id)) setWaiting(state.shown.get(id), false);
  state.waiting = next;
  for (const id of next) setWaiting(state.shown.get(id), true);
}

function setWaiting(node, on) {
  if (!node || node.classList.contains('msg-system')) return;
  node.classList.toggle('msg-waiting', on);
  const note = node.querySelector('.msg-waiting-note');
  if (on && !note) node.append(buildNote(`waiting for ${state.assistant.name}`, 'msg-waiting-note'));
  if (!on && note) note.remove();
}

/* ---------------------------------------------------------------- socket protocol */

const socket = io({ autoConnect: false });

function setBanner(visible) {
  els.connectionBanner.textContent = state.everConnected ? 'Reconnecting…' : 'Connecting…';
  els.connectionBanner.hidden = !visible;
}

function onConnect() {
  state.everConnected = true;
  setBanner(false);
  if (state.identity?.name) register(state.identity);
}

function onDisconnect(reason) {
  state.registered = false;
  setBanner(true);
  // The client only retries by itself after a network drop, not after the server closed the session.
  if (reason === 'io server disconnect') els.connectionBanner.textContent = 'Disconnected. Reload the page to rejoin.';
}

function register(identity) {
  const payload = state.room ? { ...identity, room: state.room } : identity;
  socket.timeout(ACK_TIMEOUT_MS).emit('register', payload, (err, ack) => {
    if (!err && ack?.ok) return onRegistered(ack, identity);
    if (!err) openNicknameDialog(errorText(ack?.error, 'That nickname cannot be used. Please choose another.'));
    else if (els.nicknameDialog.open) setNicknameError('The server did not answer. Please try again.');
    else showNotice('Could not rejoin the room: the server did not answer. Reload the page to try again.');
  });
}

function onRegistered(ack, identity) {
  state.me = { user_id: ack.user_id ?? identity.user_id, name: ack.name ?? identity.name };
  // The token proves to the server that this browser owns its user_id: other tabs and
  // reconnects send it, so they are the same person rather than a copy with a suffix.
  if (typeof ack.token === 'string') {
    state.identity = { ...identity, user_id: state.me.user_id, token: ack.token };
    writeStorage(STORAGE_IDENTITY, state.identity);
  }
  state.registered = true;
  renderPresence();
  if (els.nicknameDialog.open) els.nicknameDialog.close(); // its close handler focuses the input
}

function onWelcome(data) {
  if (!data || typeof data !== 'object') return;
  if (data.user_id != null) state.me = { user_id: data.user_id, name: data.name };
  state.registered = true;
  applyAssistant(data.assistant);
  setMembers(data.members);
  showBusy(data.busy ?? null);
  resumeStreams(data.busy?.partial);
  state.awaitingHistory = true;
  state.arrivedEarly.clear();
}

function onMessageList(list) {
  if (!Array.isArray(list)) return;
  if (!state.awaitingHistory) return list.forEach((msg) => showMessage(msg));
  state.awaitingHistory = false;
  rebuildTranscript(list);
}

socket.on('connect', onConnect);
socket.on('disconnect', onDisconnect);
socket.on('connect_error', () => setBanner(true));
socket.on('welcome', onWelcome);
socket.on('message-list', onMessageList);
socket.on('message', (msg) => showMessage(msg));
socket.on('join', onJoin);
socket.on('leave', onLeave);
socket.on('presence', setMembers);
socket.on('ai-start', onAiStart);
socket.on('ai-end', onAiEnd);
socket.on('ai-delta', onDelta);
socket.on('ai-tool', onTool);
socket.on('queue', onQueue);
socket.on('error', (data) => showNotice(errorText(data?.error, 'Something went wrong.')));

function emitMessage(msg) {
  return new Promise((resolve) => {
    socket.timeout(ACK_TIMEOUT_MS).emit('message', msg, (err, ack) => {
      if (err) resolve({ ok: false, error: 'The server did not answer in time. Please try again.' });
      else if (ack?.ok) resolve({ ok: true, id: ack.id ?? msg.id });
      else resolve({ ok: false, error: errorText(ack?.error, 'The message could not be sent.') });
    });
  });
}

function stopTurn() {
  els.stopButton.disabled = true;
  socket.timeout(ACK_TIMEOUT_MS).emit('stop', {}, (err, ack) => {
    if (!err && ack?.ok) return;
    els.stopButton.disabled = false;
    showNotice(err ? 'The server did not answer the stop request.' : errorText(ack?.error, 'Could not stop the reply.'));
  });
}

/* ---------------------------------------------------------------- /stream */

// The reply itself reaches every member (the sender too) as socket events, so this reader only has
// to surface refusals (JSON 4xx) and error frames.
async function postStream(msg) {
  let response;
  try {
    const headers = { 'Content-Type': 'application/json', Accept: 'text/event-stream', 'X-Socket-Id': socket.id };
    response = await fetch('/stream', { method: 'POST', headers, body: JSON.stringify(msg) });
  } catch {
    return { ok: false, error: 'Could not reach the server. Please try again.' };
  }
  if (!response.ok) return { ok: false, error: await readJsonError(response) };
  if ((response.headers.get('Content-Type') || '').includes('text/event-stream')) {
    // A broken stream also drops the socket, and the banner says so: nothing more to report.
    readEventStream(response.body).catch(() => {});
  }
  return { ok: true, id: msg.id };
}

async function readJsonError(response) {
  const fallback = `The server refused the message (HTTP ${response.status}).`;
  try { return errorText((await response.json())?.error, fallback); } catch { return fallback; }
}

async function readEventStream(body) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  let buffer = '';
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    buffer += value;
    const frames = buffer.split(/\r?\n\r?\n/);
    buffer = frames.pop(); // the last piece may be an incomplete frame
    frames.forEach((frame) => handleFrame(parseFrame(frame)));
  }
}

function parseFrame(text) {
  let event = 'message';
  const data = [];
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon === 0) continue; // an SSE comment
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n') };
}

function handleFrame({ event, data }) {
  if (event !== 'error') return; // delta, tool and done are already shown from the socket events
  let error = data;
  try { error = JSON.parse(data)?.error; } catch { /* a plain-text error frame */ }
  const text = errorText(error, 'The reply failed.');
  if (!state.systemLines.has(text)) showNotice(text);
}

/* ---------------------------------------------------------------- input */

const maxChars = Number(config.max_message_chars) || 4000;

function updateCounter() {
  const count = charCount(els.messageInput.value);
  els.charCounter.textContent = `${count} / ${maxChars}`;
  els.charCounter.classList.toggle('near', count > maxChars * 0.9 && count <= maxChars);
  els.charCounter.classList.toggle('over', count > maxChars);
}

function draftProblem(content) {
  if (!state.identity) {
    openNicknameDialog(); // the dialog was dismissed (a second Escape can force it shut)
    return 'Choose a nickname to join the room.';
  }
  if (!state.registered || !socket.connected) return 'Not connected to the room yet. Please wait a moment.';
  if (!content) return 'Type a message first.';
  const count = charCount(content);
  if (count > maxChars) return `The message is too long: ${count} characters, the limit is ${maxChars}.`;
  return null;
}

// Until the server accepts it, the message says so in words where its time will be: a faded bubble
// took its text below 4.5:1.
function addPending(msg) {
  state.pending.add(msg.id);
  showMessage(msg, { force: true });
  const node = state.shown.get(msg.id);
  node?.classList.add('msg-pending');
  node?.querySelector('.msg-meta').append(make('span', 'msg-sending', 'Sending…'));
}

function acceptPending(id, serverId = id) {
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

function dropPending(id) {
  state.pending.delete(id);
  state.shown.get(id)?.remove();
  state.shown.delete(id);
}

// The box empties at once, so the next message can be typed while this one is on its way (a /stream
// request only answers once the server starts streaming). A refused message comes back into the box.
async function send() {
  const content = els.messageInput.value.trim();
  const problem = draftProblem(content);
  if (problem) return showNotice(problem);
  showNotice('');
  const { user_id: userId, name } = state.me;
  const msg = { id: uuid(), content, user_id: userId, name, role: 'user', created_at: Date.now() };
  addPending(msg);
  setDraft('');
  const result = els.streamToggle.checked ? await postStream(msg) : await emitMessage(msg);
  if (result.ok) return acceptPending(msg.id, result.id);
  dropPending(msg.id);
  if (!els.messageInput.value.trim()) setDraft(content); // to fix or resend
  showNotice(result.error);
}

function setDraft(text) {
  els.messageInput.value = text;
  updateCounter();
}

function onInputKey(event) {
  // Enter sends; Shift+Enter is a new line; Enter that confirms an IME composition is neither.
  if (event.key !== 'Enter' || event.shiftKey || event.isComposing) return;
  event.preventDefault();
  send();
}

function initInput() {
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

/* ---------------------------------------------------------------- nickname */

function openNicknameDialog(error = '') {
  els.nicknameInput.value = state.identity?.name ?? '';
  setNicknameError(error);
  if (!els.nicknameDialog.open) els.nicknameDialog.showModal();
  els.nicknameInput.focus();
  els.nicknameInput.select();
}

function setNicknameError(text) { els.nicknameError.textContent = text; }

function onNicknameSubmit(event) {
  event.preventDefault(); // stay open until the server accepts the name
  const name = els.nicknameInput.value.trim();
  if (!name) return setNicknameError('Please enter a nickname.');
  state.identity = { ...state.identity, user_id: state.identity?.user_id ?? uuid(), name };
  writeStorage(STORAGE_IDENTITY, state.identity);
  setNicknameError('');
  if (socket.connected) register(state.identity);
  else setNicknameError('Connecting to the room…'); // onConnect registers as soon as it can
}

function initNickname() {
  els.nicknameForm.addEventListener('submit', onNicknameSubmit);
  // Escape must not leave someone in the room without a name.
  els.nicknameDialog.addEventListener('cancel', (event) => {
    if (!state.registered) event.preventDefault();
  });
  els.nicknameDialog.addEventListener('close', () => els.messageInput.focus());
}

/* ---------------------------------------------------------------- start */

function start() {
  initScrolling();
  initInput();
  initNickname();
  if (!state.identity) openNicknameDialog();
  setBanner(true);
  socket.connect();
}

start();
