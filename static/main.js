// Threadroom's page: many people, one shared conversation with one assistant. Starts the modules:
// page (settings, elements, state), store (pure decisions), transcript, room, socket, stream,
// composer, nickname; sse, markdown and util are helpers. No build step: the browser loads these
// ES modules and the vendored ESM builds in static/vendor/ as they are.

import { initComposer } from './composer.js';
import { initNickname, openNicknameDialog, setNicknameError } from './nickname.js';
import { state } from './page.js';
import { connectSocket, register, socket } from './socket.js';
import { initScrolling } from './transcript.js';

function join(identity) {
  if (socket.connected) register(identity);
  else setNicknameError('Connecting to the room…'); // the connect handler registers as soon as it can
}

initScrolling();
initComposer();
initNickname(join);
if (!state.identity) openNicknameDialog();
connectSocket();
