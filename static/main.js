// Threadroom's page: many people, one shared conversation with one assistant. Starts the modules:
// page (settings, elements, state), store (pure decisions), transcript, room, socket, stream,
// composer, nickname; header (the room bar), owner (settings, removal), msgtools (copy, reply,
// regenerate, code), typing, unread, autocomplete (@mentions); sse, markdown, mentions, roomnames
// and util are helpers. No build step: the browser loads these ES modules and the vendored ESM
// builds in static/vendor/ as they are.

import { initMentions } from './autocomplete.js';
import { initComposer } from './composer.js';
import { explainInvalidRoom, initRoomBar } from './header.js';
import { initMessageTools } from './msgtools.js';
import { initNickname, openNicknameDialog, setNicknameError } from './nickname.js';
import { initOwner } from './owner.js';
import { state } from './page.js';
import { connectSocket, register, socket } from './socket.js';
import { initScrolling } from './transcript.js';
import { initTyping } from './typing.js';
import { initUnread } from './unread.js';

function join(identity) {
  if (socket.connected) register(identity);
  else setNicknameError('Connecting to the room…'); // the connect handler registers as soon as it can
}

initRoomBar();
// An invalid ?room= is explained instead of joining anything (never swapped for the lobby).
if (!explainInvalidRoom()) {
  initScrolling();
  initUnread();
  initComposer();
  initMentions();
  initTyping();
  initMessageTools();
  initOwner();
  initNickname(join);
  if (!state.identity) openNicknameDialog();
  connectSocket();
}
