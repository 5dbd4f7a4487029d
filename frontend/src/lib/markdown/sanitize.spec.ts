// @vitest-environment jsdom
// The sanitiser profile, run in jsdom (DOMPurify needs a DOM). jsdom's page is http://localhost:3000, so that
// is "the origin" here. Each case feeds what a model or a Markdown file could carry and checks what is left.

import { describe, expect, it } from 'vitest';
import { renderMarkdown } from './render';
import { disarmHandlers, isLocalUrl, sanitize, stripUnsafeLinks } from './sanitize';

/** Sanitises `html` and parses the result, for querying. */
function clean(html: string): HTMLElement {
	const div = document.createElement('div');
	div.innerHTML = sanitize(html);
	return div;
}

describe('sanitize: DOMPurify defaults still hold', () => {
	it('drops scripts, event handlers and javascript: links', () => {
		const out = clean('<script>window.x=1</script><img src="a.png" onerror="x()"><a href="javascript:alert(1)">l</a><p onclick="y()">p</p>');
		expect(out.querySelector('script')).toBeNull();
		expect(out.querySelector('img')?.hasAttribute('onerror')).toBe(false);
		expect(out.querySelector('a')?.hasAttribute('href')).toBe(false);
		expect(out.querySelector('p')?.hasAttribute('onclick')).toBe(false);
	});
});

describe('sanitize: forms and controls', () => {
	it.each(['form', 'input', 'button', 'textarea', 'select'])('drops <%s>', (tag) => {
		const out = clean(`<p>before</p><${tag} name="n" value="v">label</${tag}><p>after</p>`);
		expect(out.querySelector(tag)).toBeNull();
		expect(out.textContent).toContain('before');
		expect(out.textContent).toContain('after');
	});

	it('drops a whole form posting elsewhere, keeping its visible text as text', () => {
		const out = clean('<form action="http://evil.example/" method="post"><input name="token" placeholder="Token"><button type="submit">Log in</button></form>');
		expect(out.querySelectorAll('form, input, button')).toHaveLength(0);
		expect(out.innerHTML).not.toContain('evil.example');
		expect(out.textContent).toBe('Log in');
	});

	it('drops options and datalists too', () => {
		const out = clean('<select><optgroup label="g"><option>a</option></optgroup></select><datalist id="d"><option value="x"></option></datalist>');
		expect(out.querySelectorAll('select, option, optgroup, datalist')).toHaveLength(0);
	});

	it('drops formaction and action wherever they appear', () => {
		const out = clean('<div action="http://evil.example/" formaction="http://evil.example/">x</div>');
		expect(out.querySelector('div')?.attributes).toHaveLength(0);
	});
});

describe('sanitize: styles, frames and plugins', () => {
	it('drops <style> with its rules', () => {
		const out = clean('<style>body { display: none }</style><p>text</p>');
		expect(out.querySelector('style')).toBeNull();
		expect(out.textContent).toBe('text');
	});

	it('drops style attributes (no covering the page)', () => {
		const out = clean('<div style="position:fixed;inset:0;background:url(http://evil.example/x.png)">cover</div>');
		expect(out.querySelector('div')?.hasAttribute('style')).toBe(false);
		expect(out.innerHTML).not.toContain('evil.example');
	});

	it('drops <style> inside SVG', () => {
		expect(clean('<svg><style>*{fill:red}</style><circle r="1"></circle></svg>').querySelector('style')).toBeNull();
	});

	it.each(['iframe', 'object', 'embed'])('drops <%s>', (tag) => {
		const attr = tag === 'object' ? 'data' : 'src';
		const out = clean(`<${tag} ${attr}="http://evil.example/x"></${tag}><p>ok</p>`);
		expect(out.querySelector(tag)).toBeNull();
		expect(out.innerHTML).not.toContain('evil.example');
	});

	it('drops <link> and <frame>', () => {
		const out = clean('<link rel="stylesheet" href="http://evil.example/a.css"><frameset><frame src="http://evil.example/"></frameset><p>ok</p>');
		expect(out.querySelectorAll('link, frame, frameset')).toHaveLength(0);
	});
});

describe('sanitize: images and other fetched sources', () => {
	it('keeps relative, absolute-path, same-origin, data: and blob: images', () => {
		const srcs = ['pic.png', './a/b.png', '../up.png', '/api/fs/raw?path=%2Fx.png', 'http://localhost:3000/me.png', 'data:image/png;base64,iVBORw0KGgo=', 'blob:http://localhost:3000/0b6e-1'];
		const out = clean(srcs.map((s) => `<img src="${s}" alt="i">`).join(''));
		expect([...out.querySelectorAll('img')].map((i) => i.getAttribute('src'))).toEqual(srcs);
		expect(out.querySelector('.remote-blocked')).toBeNull();
	});

	it.each([
		'http://remote.example/x.png',
		'https://remote.example/x.png',
		'//remote.example/x.png',
		'/\\remote.example/x.png',
		'\\\\remote.example\\x.png',
		' https://remote.example/x.png',
		'http://localhost:3001/other-port.png',
		'https://localhost:3000/other-scheme.png'
	])('drops a remote image source: %s', (src) => {
		const out = clean(`<p>x <img src="${src}" alt="chart"> y</p>`);
		const img = out.querySelector('img');
		expect(img?.hasAttribute('src')).toBe(false);
		expect(img?.getAttribute('alt')).toBe('chart');
		expect(img?.classList.contains('remote-blocked')).toBe(true);
		expect(out.innerHTML).not.toContain('remote.example');
	});

	it('drops srcset (on img and on picture sources)', () => {
		const out = clean('<picture><source srcset="http://remote.example/a.webp"><img src="a.png" srcset="http://remote.example/b.png 2x" alt=""></picture>');
		expect(out.innerHTML).not.toContain('srcset');
		expect(out.querySelector('img')?.getAttribute('src')).toBe('a.png');
	});

	it('drops remote video, audio and poster sources', () => {
		const out = clean('<video src="http://remote.example/v.mp4" poster="http://remote.example/p.png" controls></video><audio controls><source src="https://remote.example/a.mp3"></audio>');
		expect(out.innerHTML).not.toContain('remote.example');
	});

	it('drops remote SVG image and use references, keeping fragment references', () => {
		const out = clean('<svg><image href="http://remote.example/i.png"></image><image xlink:href="http://remote.example/j.png"></image><a href="#x"><text>t</text></a></svg>');
		expect(out.innerHTML).not.toContain('remote.example');
	});

	it('drops table backgrounds', () => {
		expect(clean('<table background="http://remote.example/bg.png"><tr><td>c</td></tr></table>').innerHTML).not.toContain('remote.example');
	});

	it('leaves links to other sites alone, opening them in a new tab without an opener', () => {
		const a = clean('<a href="https://docs.example/page">docs</a>').querySelector('a')!;
		expect(a.getAttribute('href')).toBe('https://docs.example/page');
		expect(a.getAttribute('target')).toBe('_blank');
		expect(a.getAttribute('rel')).toBe('noopener noreferrer');
	});
});

describe('sanitize: what Markdown rendering needs survives', () => {
	it('keeps math spans, Mermaid blocks, code classes and table alignment', () => {
		const md = 'Inline $x_1$ here.\n\n```mermaid\ngraph TD; A-->B\n```\n\n```rust\nfn main() {}\n```\n\n| a | b |\n|:-:|--:|\n| 1 | 2 |\n';
		const out = clean(renderMarkdown(md).html);
		expect(out.querySelector('span.math[data-display="0"]')?.textContent).toBe('\\(x_1\\)');
		expect(out.querySelector('.mermaid-block pre.mermaid-source code')?.textContent).toBe('graph TD; A-->B');
		expect(out.querySelector('pre code.language-rust')).not.toBeNull();
		expect(out.querySelector('th')?.getAttribute('align')).toBe('center');
	});

	it('renders a hostile model answer inert', () => {
		const answer = [
			'Here you go <script>window.__pwned=1</script>',
			'<img src=x onerror="window.__pwned=2">',
			'<form action="http://evil.example/"><input name="q"><button>Go</button></form>',
			'<img src="http://remote.example/x.png">'
		].join('\n\n');
		const out = clean(renderMarkdown(answer).html);
		expect(out.querySelectorAll('script, form, input, button')).toHaveLength(0);
		expect(out.innerHTML).not.toMatch(/onerror|evil\.example|remote\.example|__pwned/);
		// The relative `x` image stays (it is on our origin), without its handler.
		expect(out.querySelector('img[src="x"]')).not.toBeNull();
	});
});

describe('isLocalUrl', () => {
	const origin = 'http://127.0.0.1:7832';
	it.each([
		['a.png', true],
		['/x/y.png', true],
		['#frag', true],
		['?q=1', true],
		['http://127.0.0.1:7832/z.png', true],
		['http:same-scheme-relative.png', true],
		['data:image/svg+xml,<svg/>', true],
		['BLOB:http://127.0.0.1:7832/id', true],
		['http://127.0.0.1:7833/z.png', false],
		['//evil.example/z.png', false],
		['/\\evil.example/z.png', false],
		['\t//evil.example/z.png', false],
		['https://evil.example/', false],
		['ftp://evil.example/', false],
		['http://[::1', false]
	])('%s → %s', (url, local) => {
		expect(isLocalUrl(url, origin)).toBe(local);
	});
});

describe('stripUnsafeLinks', () => {
	it('removes script-like and data: hrefs from markup made after sanitising, keeps the rest', () => {
		const root = document.createElement('span');
		root.innerHTML =
			'<svg><a href="javascript:alert(1)"><text>j</text></a><a xlink:href="java\tscript:alert(1)"><text>k</text></a>' +
			'<a href="data:text/html,x"><text>d</text></a><a href="https://ok.example/"><text>o</text></a><a href="#n"><text>n</text></a></svg>';
		stripUnsafeLinks(root);
		const hrefs = [...root.querySelectorAll('a')].map((a) => a.getAttribute('href') ?? a.getAttribute('xlink:href'));
		expect(hrefs).toEqual([null, null, null, 'https://ok.example/', '#n']);
	});
});

describe('disarmHandlers', () => {
	it.each([
		['<img src=x onerror="window.__pwned=2">', '<img src=x>'],
		["<img src='a>b' onerror='x()' alt=c>", "<img src='a>b' alt=c>"],
		['<img src=x onerror=alert(1)>', '<img src=x>'],
		['<img/onerror=alert(1)/src=x alt=y>', '<img alt=y>'],
		// The unquoted value runs to the blank, as browsers read it: no handler here.
		['<img/src=x/onerror=alert(1)>', '<img/src=x/onerror=alert(1)>'],
		['<svg onload="a()"><animate onbegin=b() attributeName="x"></animate></svg>', '<svg><animate attributeName="x"></animate></svg>'],
		['<a href="#" ONCLICK="x()" title="on=1">t</a>', '<a href="#" title="on=1">t</a>'],
		['<p data-x="a onclick=b">keep quoted text</p>', '<p data-x="a onclick=b">keep quoted text</p>']
	])('%s → %s', (input, output) => {
		expect(disarmHandlers(input)).toBe(output);
	});

	it('leaves text, escaped code and attribute-like words outside tags alone', () => {
		const text = 'online onerror=1 and <code>&lt;img onerror=x&gt;</code> or a < b onx=1 c';
		expect(disarmHandlers(text)).toBe(text);
	});
});
