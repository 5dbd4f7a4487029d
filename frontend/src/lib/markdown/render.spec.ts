import { describe, expect, it } from 'vitest';
import { extractMath, renderMarkdown, texOf } from './render';

describe('extractMath', () => {
	it('finds inline and display math in all four notations', () => {
		const { spans } = extractMath('a $x_1$ b \\(y^2\\) c $$\\sum_i i$$ d \\[\\frac{a}{b}\\]');
		expect(spans).toEqual([
			{ tex: 'x_1', display: false },
			{ tex: 'y^2', display: false },
			{ tex: '\\sum_i i', display: true },
			{ tex: '\\frac{a}{b}', display: true }
		]);
	});

	it('leaves code and prices alone', () => {
		expect(extractMath('`$x$` and\n```\n$$y$$\n```\n').spans).toEqual([]);
		expect(extractMath('costs $5 and $6 today').spans).toEqual([]);
		expect(extractMath('escaped \\$x$ here').spans).toEqual([]);
	});
});

describe('renderMarkdown', () => {
	it('renders Markdown and keeps TeX intact (underscores, backslashes)', () => {
		const r = renderMarkdown('**bold** and $a_b \\cdot c_d$\n\n$$\n\\int_0^1 x\\,dx\n$$');
		expect(r.html).toContain('<strong>bold</strong>');
		expect(r.html).toContain('<span class="math" data-display="0">\\(a_b \\cdot c_d\\)</span>');
		expect(r.html).toContain('data-display="1">\\[\\int_0^1 x\\,dx\\]</span>');
		expect(r.hasMath).toBe(true);
	});

	it('turns mermaid fences into diagram blocks and other fences into plain code', () => {
		const r = renderMarkdown('```mermaid\ngraph TD; A-->B\n```\n\n```rust\nfn main() {}\n```\n\n```mmd\ngraph LR; X\n```');
		expect(r.hasMermaid).toBe(true);
		expect(r.html.match(/mermaid-block/g)).toHaveLength(2);
		expect(r.html).toContain('graph TD; A--&gt;B');
		expect(r.html).toContain('<pre><code class="language-rust">fn main() {}</code></pre>');
		expect(r.hasCode).toBe(true);
	});

	it('escapes HTML inside code', () => {
		expect(renderMarkdown('```\n<script>x</script>\n```').html).toContain('&lt;script&gt;');
	});

	it('strips the delimiters of a rendered span', () => {
		expect(texOf('\\(x\\)')).toBe('x');
		expect(texOf('\\[y\\]')).toBe('y');
	});
});
