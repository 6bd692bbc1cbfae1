// @mentions in the message box: which word the caret is in, which names match it, and the text
// after one is picked. Pure (no DOM), so Node tests it; autocomplete.js draws the list.

const MAX_CANDIDATES = 6;

// The "@query" the caret is at the end of, or null. "@" must start the text or follow a space or
// an opening bracket, so e-mail addresses ("ann@example.org") do not open the list.
export function mentionAt(text, caret) {
  const before = text.slice(0, caret);
  const match = /(^|[\s([{])@([^\s@]{0,32})$/u.exec(before);
  if (!match) return null;
  const query = match[2];
  return { query, start: caret - query.length - 1, end: caret };
}

// Names that start with the query first, then names that contain it; each name once, in the
// order given (the assistant first, then the people present).
export function mentionCandidates(query, names, limit = MAX_CANDIDATES) {
  const wanted = query.toLocaleLowerCase();
  const unique = [...new Set(names.filter((n) => typeof n === 'string' && n))];
  const starts = unique.filter((n) => n.toLocaleLowerCase().startsWith(wanted));
  const contains = unique.filter((n) => !starts.includes(n) && n.toLocaleLowerCase().includes(wanted));
  return [...starts, ...contains].slice(0, limit);
}

// The text with "@query" replaced by "@Name " and where the caret goes next.
export function insertMention(text, mention, name) {
  const inserted = `@${name} `;
  const after = text.slice(mention.end).replace(/^ /, '');
  return { text: text.slice(0, mention.start) + inserted + after, caret: mention.start + inserted.length };
}

// Moving through the list wraps around at both ends.
export function moveIndex(index, step, length) {
  if (!length) return -1;
  return (index + step + length) % length;
}
