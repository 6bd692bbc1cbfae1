// Sending a message as a POST to /stream (the "Stream replies" switch). The reply itself reaches
// every member (the sender too) as socket events, so this reader only has to surface refusals
// (JSON 4xx) and error frames.

import { state } from './page.js';
import { frameError, readEventStream } from './sse.js';
import { socket } from './socket.js';
import { showNotice } from './transcript.js';
import { errorText } from './util.js';

export async function postStream(msg) {
  let response;
  try {
    const headers = { 'Content-Type': 'application/json', Accept: 'text/event-stream', 'X-Socket-Id': socket.id };
    // Relative to the page: /stream at the root, /chat/stream under a proxy's /chat/.
    response = await fetch('stream', { method: 'POST', headers, body: JSON.stringify(msg) });
  } catch {
    return { ok: false, error: 'Could not reach the server. Please try again.' };
  }
  if (!response.ok) return { ok: false, error: await readJsonError(response) };
  if ((response.headers.get('Content-Type') || '').includes('text/event-stream')) {
    // A broken stream also drops the socket, and the banner says so: nothing more to report.
    readEventStream(response.body, onFrame).catch(() => {});
  }
  return { ok: true, id: msg.id };
}

async function readJsonError(response) {
  const fallback = `The server refused the message (HTTP ${response.status}).`;
  try { return errorText((await response.json())?.error, fallback); } catch { return fallback; }
}

// Delta, tool and done frames are already shown from the socket events; an error is shown once.
function onFrame(frame) {
  const text = frameError(frame);
  if (text && !state.systemLines.has(text)) showNotice(text);
}
