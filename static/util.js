// Small pure helpers shared by the page's modules: no DOM, so Node can test them.

// Count code points, as the server (Python len) does, so emoji are not counted twice.
export const charCount = (text) => Array.from(text).length;

export const listNames = (names) =>
  new Intl.ListFormat('en', { style: 'long', type: 'conjunction' }).format(names);

export const errorText = (error, fallback) => (typeof error === 'string' && error.trim() ? error : fallback);

export function isMessage(msg) {
  return msg && typeof msg === 'object' && msg.id != null && typeof msg.content === 'string';
}

export function isMember(m) {
  return m && typeof m === 'object' && m.user_id != null && typeof m.name === 'string';
}

export function uuid(random = globalThis.crypto) {
  if (random.randomUUID) return random.randomUUID();
  // randomUUID only exists in secure contexts; plain http on a LAN address still needs ids.
  const b = random.getRandomValues(new Uint8Array(16));
  b[6] = (b[6] & 0x0f) | 0x40;
  b[8] = (b[8] & 0x3f) | 0x80;
  const h = Array.from(b, (x) => x.toString(16).padStart(2, '0')).join('');
  return `${h.slice(0, 8)}-${h.slice(8, 12)}-${h.slice(12, 16)}-${h.slice(16, 20)}-${h.slice(20)}`;
}
