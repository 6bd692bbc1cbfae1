// SSE frames as /stream sends them: split across chunks, multi-line data, comments, CRLF.
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { createFrameSplitter, frameError, parseFrame, readEventStream } from '../../static/sse.js';

test('parseFrame reads the event name and the data', () => {
  assert.deepEqual(parseFrame('event: delta\ndata: {"id":"m1","text":"Hi"}'), {
    event: 'delta',
    data: '{"id":"m1","text":"Hi"}',
  });
});

test('a frame without an event line is a message event', () => {
  assert.deepEqual(parseFrame('data: hello'), { event: 'message', data: 'hello' });
});

test('several data lines join with newlines, one leading space dropped per line', () => {
  assert.deepEqual(parseFrame('data: one\ndata:two\ndata:  three'), {
    event: 'message',
    data: 'one\ntwo\n three',
  });
});

test('comment lines and unknown fields are ignored', () => {
  assert.deepEqual(parseFrame(': keep-alive\nevent: done\nid: 7\nretry: 10\ndata: {}'), {
    event: 'done',
    data: '{}',
  });
});

test('a field with no colon has an empty value', () => {
  assert.deepEqual(parseFrame('data\ndata'), { event: 'message', data: '\n' });
});

test('a value keeps its later colons', () => {
  assert.equal(parseFrame('data: a: b: c').data, 'a: b: c');
});

test('CRLF lines parse like LF lines', () => {
  assert.deepEqual(parseFrame('event: error\r\ndata: x\r\ndata: y'), { event: 'error', data: 'x\ny' });
});

test('the splitter returns frames only once their blank line has arrived', () => {
  const split = createFrameSplitter();
  assert.deepEqual(split('event: del'), []);
  assert.deepEqual(split('ta\ndata: {"text":"a"}\n'), []);
  assert.deepEqual(split('\nevent: done\ndata: {}\n\n'), [
    { event: 'delta', data: '{"text":"a"}' },
    { event: 'done', data: '{}' },
  ]);
  assert.deepEqual(split(''), []);
});

test('the splitter finds CRLF blank lines, even when a chunk ends inside one', () => {
  const split = createFrameSplitter();
  assert.deepEqual(split('data: a\r\n\r'), []);
  assert.deepEqual(split('\ndata: b\r\n'), [{ event: 'message', data: 'a' }]);
  assert.deepEqual(split('\r\n'), [{ event: 'message', data: 'b' }]);
});

test('a keep-alive comment between frames yields an empty message frame, which carries nothing', () => {
  const split = createFrameSplitter();
  const frames = split(': ping\n\nevent: error\ndata: {"error":"No."}\n\n');
  assert.deepEqual(frames, [
    { event: 'message', data: '' },
    { event: 'error', data: '{"error":"No."}' },
  ]);
  assert.deepEqual(frames.map(frameError), [null, 'No.']);
});

test('readEventStream reads frames from a byte stream cut anywhere, multi-byte characters too', async () => {
  const text = 'event: delta\ndata: {"text":"héllo 👋"}\n\n: ka\n\nevent: error\ndata: Nope\n\nevent: tail';
  const bytes = new TextEncoder().encode(text);
  const body = new ReadableStream({
    start(controller) {
      for (let i = 0; i < bytes.length; i += 3) controller.enqueue(bytes.slice(i, i + 3));
      controller.close();
    },
  });
  const frames = [];
  await readEventStream(body, (frame) => frames.push(frame));
  assert.deepEqual(frames, [
    { event: 'delta', data: '{"text":"héllo 👋"}' },
    { event: 'message', data: '' },
    { event: 'error', data: 'Nope' }, // the unterminated last frame is never dispatched
  ]);
});

test('frameError reads JSON errors and plain-text errors, and falls back to a sentence', () => {
  assert.equal(frameError({ event: 'error', data: '{"error":"The room is busy."}' }), 'The room is busy.');
  assert.equal(frameError({ event: 'error', data: 'Plain words.' }), 'Plain words.');
  assert.equal(frameError({ event: 'error', data: '{"error":"  "}' }), 'The reply failed.');
  assert.equal(frameError({ event: 'error', data: '"just a string"' }), 'The reply failed.');
  assert.equal(frameError({ event: 'error', data: '' }), 'The reply failed.');
  assert.equal(frameError({ event: 'delta', data: '{"error":"not an error frame"}' }), null);
});
