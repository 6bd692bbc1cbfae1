// Tools on the messages: Copy (a reply), Reply (sets the message the next one answers), Regenerate
// (the latest reply only), and on code blocks syntax highlighting and "Copy code". Also the quote
// of the message a reply answers, and the "Replying to …" line above the composer.

import hljs from './vendor/highlight.min.js';
import { copyText, els, flashLabel, make, state } from './page.js';
import { request } from './socket.js';
import { excerpt, latestReplyId } from './store.js';
import { showNotice } from './transcript.js';

// What each shown message says, as typed (the markdown source for replies): what Copy copies.
const sources = new WeakMap();

// highlight.js reads the code's text and writes it back escaped, inside its own spans (classes
// only, so the CSP's style-src 'self' holds). It warns when a block already holds elements; a
// block marked and DOMPurify made never does, and a warning per render would only be noise.
hljs.configure({ ignoreUnescapedHTML: true });

function toolButton(label, className, onClick) {
  const button = make('button', `tool-button ${className}`, label);
  button.type = 'button';
  button.addEventListener('click', onClick);
  return button;
}

// Called for every finished user or assistant message (not system lines, not streaming bubbles).
export function decorateMessage(node, msg) {
  sources.set(node, msg.content);
  if (msg.reply_to) node.querySelector('.msg-meta').after(buildQuote(msg.reply_to));
  const tools = make('div', 'msg-tools');
  if (msg.role === 'assistant') {
    decorateCode(node.querySelector('.msg-body'));
    tools.append(toolButton('Copy', 'copy-button', (e) => copyMessage(e.currentTarget, node)));
  }
  if (msg.status !== 'replaced') tools.append(toolButton('Reply', 'reply-button', () => setReplyTo(node)));
  if (msg.role === 'assistant') {
    const regen = toolButton('Regenerate', 'regen-button', regenerate);
    regen.hidden = true; // refreshRegenerate shows it on the latest reply only
    tools.append(regen);
  }
  node.append(tools);
}

function buildQuote(id) {
  const target = state.shown.get(id);
  const name = target?.querySelector('.msg-name')?.textContent;
  const text = target ? excerpt(sources.get(target) ?? target.querySelector('.msg-body')?.textContent) : '';
  return make('p', 'msg-quote', name ? `↪ Replying to ${name}: ${text}` : '↪ Replying to an earlier message');
}

// Each code block gets its colours and a Copy code button; the text copied is the code as written.
export function decorateCode(body) {
  for (const code of body.querySelectorAll('pre > code')) {
    const pre = code.parentElement;
    if (pre.parentElement.classList.contains('code-block')) continue;
    const source = code.textContent;
    hljs.highlightElement(code);
    const wrap = make('div', 'code-block');
    pre.replaceWith(wrap);
    const language = /language-([\w+#-]+)/.exec(code.className)?.[1];
    const bar = make('div', 'code-bar');
    bar.append(make('span', 'code-language', language || 'code'));
    bar.append(toolButton('Copy code', 'copy-code-button', (e) => copyAndSay(e.currentTarget, source)));
    wrap.append(bar, pre);
  }
}

async function copyAndSay(button, text) {
  flashLabel(button, (await copyText(text)) ? 'Copied' : 'Copy failed');
}

function copyMessage(button, node) { return copyAndSay(button, sources.get(node) ?? ''); }

async function regenerate(event) {
  const button = event.currentTarget;
  button.disabled = true;
  const ack = await request('regenerate', {});
  button.disabled = false;
  if (!ack.ok) showNotice(ack.error);
}

// Only the latest reply can be written again, and not while the assistant is busy.
export function refreshRegenerate() {
  const replies = [...els.transcript.querySelectorAll('article.msg-assistant:not(.msg-streaming)')].map((n) => ({
    id: n.dataset.id, role: 'assistant', status: n.classList.contains('msg-replaced') ? 'replaced' : null, node: n,
  }));
  const latest = latestReplyId(replies);
  for (const { id, node } of replies) {
    const button = node.querySelector('.regen-button');
    if (button) button.hidden = id !== latest || Boolean(state.busy) || !state.registered;
  }
}

export function setReplyTo(node) {
  const name = node.querySelector('.msg-name')?.textContent ?? 'Someone';
  showReplyTo({ id: node.dataset.id, name, text: excerpt(sources.get(node)) });
  els.messageInput.focus();
}

// {id, name, text}: also how a refused message gets its reply line back, with its text.
export function showReplyTo(replyTo) {
  state.replyTo = replyTo;
  els.replyPreviewText.textContent = `Replying to ${replyTo.name}: ${replyTo.text}`;
  els.replyPreview.hidden = false;
}

export function clearReplyTo() {
  state.replyTo = null;
  els.replyPreview.hidden = true;
}

export function initMessageTools() {
  els.replyCancel.addEventListener('click', () => {
    clearReplyTo();
    els.messageInput.focus();
  });
}
