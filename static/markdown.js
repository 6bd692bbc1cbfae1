// Assistant replies as markdown: marked turns the text into HTML, DOMPurify sanitizes it.
// markdownToHtml is pure (Node tests it); renderMarkdown needs the page's DOM.

import { Marked } from './vendor/marked.esm.js';
import DOMPurify from './vendor/purify.es.mjs';

const HTML_ESCAPES = { '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' };
export function escapeHtml(text) { return String(text).replace(/[&<>"']/g, (c) => HTML_ESCAPES[c]); }

const markdown = new Marked({ gfm: true, breaks: true, async: false });
// Raw HTML in a reply is shown as the text it is: a model quoting someone's "<img onerror=…>" or
// "<script>" must show those characters, not a (sanitized) broken image.
markdown.use({ renderer: { html: ({ text }) => escapeHtml(text) } });

export function markdownToHtml(text) { return markdown.parse(text || ''); }

export const PURIFY_OPTIONS = {
  USE_PROFILES: { html: true },
  // No styles or form controls from model output: they could restyle or imitate the page itself.
  FORBID_TAGS: ['style', 'form', 'input', 'button', 'textarea', 'select', 'dialog'],
  FORBID_ATTR: ['style', 'srcset'],
};

export function isSameOrigin(src, pageUrl) {
  try { return new URL(src, pageUrl).origin === new URL(pageUrl).origin; } catch { return false; }
}

// DOMPurify needs a DOM: under Node (the unit tests) it loads inert and only markdownToHtml is used.
if (DOMPurify.isSupported) {
  DOMPurify.addHook('afterSanitizeAttributes', (node) => {
    if (node.tagName === 'A' && node.hasAttribute('href')) {
      node.setAttribute('target', '_blank');
      node.setAttribute('rel', 'noopener noreferrer');
    }
    // Images only from this origin: a remote image would leak readers' addresses to anyone.
    if (node.tagName === 'IMG' && !isSameOrigin(node.getAttribute('src'), location.href)) {
      node.removeAttribute('src');
    }
  });
}

export function renderMarkdown(target, text) {
  // The one innerHTML of the page: marked's output, always through DOMPurify first.
  target.innerHTML = DOMPurify.sanitize(markdownToHtml(text), PURIFY_OPTIONS);
  // An image that lost its remote address would show as a broken icon: show its description.
  for (const img of target.querySelectorAll('img:not([src])')) {
    img.replaceWith(img.alt ? `[image: ${img.alt}]` : '[image]');
  }
}
