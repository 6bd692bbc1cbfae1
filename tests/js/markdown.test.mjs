// The marked half of the markdown rendering (DOMPurify needs a DOM: the browser tests cover it).
import assert from 'node:assert/strict';
import { test } from 'node:test';

import { escapeHtml, isSameOrigin, markdownToHtml } from '../../static/markdown.js';

test('raw HTML in a reply becomes visible text, never markup', () => {
  const html = markdownToHtml('Quote: <img src=x onerror="alert(1)"> and <script>x()</script>');
  assert.ok(!html.includes('<img'), html);
  assert.ok(!html.includes('<script'), html);
  assert.ok(html.includes('&lt;img src=x onerror=&quot;alert(1)&quot;&gt;'), html);
  assert.ok(html.includes('&lt;script&gt;x()&lt;/script&gt;'), html);
});

test('a block of raw HTML is escaped too', () => {
  const html = markdownToHtml('<div onclick="x()">\nhi\n</div>');
  assert.ok(!html.includes('<div'), html);
  assert.ok(html.includes('&lt;div onclick=&quot;x()&quot;&gt;'), html);
});

test('markdown renders: emphasis, code, fenced code, tables, lists, single line breaks', () => {
  const html = markdownToHtml(
    '**bold** and `a<b`\nnext\n\n```js\nif (a < b) {}\n```\n\n| a | b |\n|---|---|\n| 1 | 2 |\n\n1. one\n2. two',
  );
  assert.match(html, /<strong>bold<\/strong>/);
  assert.match(html, /<code>a&lt;b<\/code><br>\s*next/);
  assert.match(html, /<pre><code class="language-js">if \(a &lt; b\) \{\}/);
  assert.match(html, /<table>[\s\S]*<th>a<\/th>[\s\S]*<td>2<\/td>/);
  assert.match(html, /<ol>\s*<li>one<\/li>\s*<li>two<\/li>\s*<\/ol>/);
});

test('empty or missing text renders to nothing', () => {
  assert.equal(markdownToHtml(''), '');
  assert.equal(markdownToHtml(undefined), '');
});

test('escapeHtml escapes the five HTML characters', () => {
  assert.equal(escapeHtml(`<a href="x" title='y'>&</a>`), '&lt;a href=&quot;x&quot; title=&#39;y&#39;&gt;&amp;&lt;/a&gt;');
});

test('only images from the page own origin count as same-origin', () => {
  const page = 'https://host.example/chat/?room=lab';
  assert.ok(isSameOrigin('static/cats/1.jpg', page));
  assert.ok(isSameOrigin('/static/cats/1.jpg', page));
  assert.ok(isSameOrigin('https://host.example/x.png', page));
  assert.ok(!isSameOrigin('https://tracker.example/t.png', page));
  assert.ok(!isSameOrigin('//tracker.example/t.png', page));
  assert.ok(!isSameOrigin('http://host.example/x.png', page)); // another scheme is another origin
  assert.ok(!isSameOrigin('data:image/png;base64,AAAA', page));
  assert.ok(!isSameOrigin('http://[bad', page));
});
