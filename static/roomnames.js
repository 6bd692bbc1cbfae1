// Room names: the server's rule, the ?room= parameter, fresh names for new rooms, invite links
// and the recent rooms this browser remembers. Pure (no DOM), so Node tests it.

export const ROOM_PATTERN = /^[a-z0-9][a-z0-9_-]{0,31}$/; // the server's rule (rooms/inbound.py)
export const LOBBY = 'lobby'; // the server's default room
export const ROOM_RULE = 'A room name is 1-32 lowercase letters, digits, - or _, starting with a letter or digit.';
const MAX_RECENT = 8;
const WORDS_A = ['amber', 'brisk', 'calm', 'clear', 'eager', 'gentle', 'lucky', 'merry', 'quiet', 'swift', 'sunny', 'witty'];
const WORDS_B = ['badger', 'comet', 'falcon', 'harbor', 'lantern', 'maple', 'meadow', 'otter', 'pebble', 'river', 'willow', 'zephyr'];

// What the page was asked for: {room} (null is the lobby) or {invalid} with the text given.
// Letter case and surrounding spaces are forgiven (links get retyped); anything else is not.
export function parseRoomParam(search) {
  const given = new URLSearchParams(search).get('room');
  if (given == null || given.trim() === '') return { room: null, invalid: null };
  const room = given.trim().toLowerCase();
  return ROOM_PATTERN.test(room) ? { room, invalid: null } : { room: null, invalid: given };
}

// Why a typed room name cannot be used, or null.
export function roomNameProblem(name) {
  if (!name) return 'Type a room name, or leave it empty for a random one.';
  return ROOM_PATTERN.test(name) ? null : ROOM_RULE;
}

// The closest valid name to an invalid one ("Other Room!" -> "other-room"), or null.
export function suggestRoomName(text) {
  const slug = String(text).toLowerCase().normalize('NFKD').replace(/[\u0300-\u036f]/g, '')
    .replace(/[^a-z0-9_-]+/g, '-').replace(/^[-_]+|[-_]+$/g, '').slice(0, 32).replace(/[-_]+$/, '');
  return ROOM_PATTERN.test(slug) ? slug : null;
}

// "quiet-otter-42": easy to say aloud, and one of 14,400 per pair of words, so two people making a
// room at the same moment rarely collide.
export function randomRoomName(random = Math.random) {
  const pick = (list) => list[Math.floor(random() * list.length)];
  return `${pick(WORDS_A)}-${pick(WORDS_B)}-${String(Math.floor(random() * 100)).padStart(2, '0')}`;
}

// The page's address with ?room= set (the lobby's is the page without it); other parameters and
// the fragment are dropped, so an invite carries nothing but the room.
export function inviteUrl(pageUrl, room) {
  const url = new URL(pageUrl);
  url.search = room && room !== LOBBY ? `?room=${encodeURIComponent(room)}` : '';
  url.hash = '';
  return url.href;
}

// The remembered rooms, most recent first, with `room` moved (or added) to the front.
export function rememberRoom(recent, room, now) {
  const others = validRecent(recent).filter((r) => r.name !== room);
  return [{ name: room, at: now }, ...others].slice(0, MAX_RECENT);
}

// Whatever storage held, keep only well-formed entries with valid names.
export function validRecent(recent) {
  if (!Array.isArray(recent)) return [];
  return recent.filter((r) => r && typeof r.name === 'string' && ROOM_PATTERN.test(r.name) && Number.isFinite(r.at));
}
