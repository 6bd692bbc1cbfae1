// Server-sent events as /stream sends them: frames cut out of text chunks, then parsed.
// Pure (no DOM), so Node can test it.

import { errorText } from './util.js';

// Return a function that takes the next text chunk and returns the frames it completed. A frame
// ends at a blank line; what follows the last one may be an incomplete frame, kept for later.
export function createFrameSplitter() {
  let buffer = '';
  return (chunk) => {
    buffer += chunk;
    const frames = buffer.split(/\r?\n\r?\n/);
    buffer = frames.pop();
    return frames.map(parseFrame);
  };
}

export function parseFrame(text) {
  let event = 'message';
  const data = [];
  for (const line of text.split(/\r?\n/)) {
    const colon = line.indexOf(':');
    if (colon === 0) continue; // an SSE comment (keep-alives are sent as comments)
    const field = colon < 0 ? line : line.slice(0, colon);
    const value = colon < 0 ? '' : line.slice(colon + 1).replace(/^ /, '');
    if (field === 'event') event = value;
    else if (field === 'data') data.push(value);
  }
  return { event, data: data.join('\n') };
}

// Call onFrame with each frame of a response body (a ReadableStream of bytes) until it ends.
export async function readEventStream(body, onFrame) {
  const reader = body.pipeThrough(new TextDecoderStream()).getReader();
  const split = createFrameSplitter();
  for (;;) {
    const { value, done } = await reader.read();
    if (done) break;
    split(value).forEach(onFrame);
  }
}

// The sentence an error frame carries (JSON {"error": …} or plain text), or null for other frames.
export function frameError({ event, data }) {
  if (event !== 'error') return null;
  let error = data;
  try { error = JSON.parse(data)?.error; } catch { /* a plain-text error frame */ }
  return errorText(error, 'The reply failed.');
}
