// Markdown to HTML for chat messages: `marked` with TeX kept intact for MathJax and Mermaid fences turned into
// diagram placeholders. The output is NOT sanitised: `sanitize.ts` runs DOMPurify on it in the browser.
// Math is cut out before `marked` runs (it would eat backslashes and underscores) and put back as
// `<span class="math" data-display="…">TeX</span>`, so without MathJax the reader still sees the TeX.

import { Marked, type Tokens } from 'marked';

export interface Rendered {
	html: string;
	hasMath: boolean;
	hasMermaid: boolean;
	hasCode: boolean;
}

const MERMAID_LANGS = new Set(['mermaid', 'mmd']);

export function escapeHtml(s: string): string {
	return s.replace(/[&<>"']/g, (c) => ({ '&': '&amp;', '<': '&lt;', '>': '&gt;', '"': '&quot;', "'": '&#39;' })[c]!);
}

const marked = new Marked({
	gfm: true,
	breaks: false,
	renderer: {
		code({ text, lang }: Tokens.Code): string {
			const language = (lang ?? '').trim().split(/\s+/)[0]?.toLowerCase() ?? '';
			if (MERMAID_LANGS.has(language)) {
				return `<div class="mermaid-block"><pre class="mermaid-source"><code>${escapeHtml(text)}</code></pre></div>\n`;
			}
			const cls = language ? ` class="language-${escapeHtml(language)}"` : '';
			return `<pre><code${cls}>${escapeHtml(text)}</code></pre>\n`;
		}
	}
});

/** A math span found in the source: its TeX (without delimiters) and whether it is display math. */
export interface MathSpan {
	tex: string;
	display: boolean;
}

// Code (fenced or inline) is matched first so that math inside it stays literal. Inline `$…$` needs a
// non-space right after the opening and before the closing dollar, and no digit after the closing one,
// so prices like "$5 and $6" stay text.
const SCAN =
	/(^|\n)(`{3,}|~{3,})[^\n]*\n[\s\S]*?(?:\n\2[^\S\n]*(?=\n|$)|$)|(`+)[\s\S]*?\3|\$\$([\s\S]+?)\$\$|\\\[([\s\S]+?)\\\]|\\\(([\s\S]+?)\\\)|(?<![\\$])\$(?=\S)([^\n$]*?\S)\$(?!\d)/g;

const PLACEHOLDER = (i: number) => `PIFACEMATH${i}X`;

/** Replaces math outside code with placeholders; returns the new text and the spans in order. */
export function extractMath(src: string): { text: string; spans: MathSpan[] } {
	const spans: MathSpan[] = [];
	const text = src.replace(SCAN, (match, nl: string | undefined, fence, tick, dd, bracket, paren, dollar) => {
		if (fence !== undefined || tick !== undefined) return match;
		const tex = (dd ?? bracket ?? paren ?? dollar ?? '') as string;
		const display = dd !== undefined || bracket !== undefined;
		spans.push({ tex: tex.trim(), display });
		return (nl ?? '') + PLACEHOLDER(spans.length - 1);
	});
	return { text, spans };
}

function restoreMath(html: string, spans: MathSpan[]): string {
	return html.replace(/PIFACEMATH(\d+)X/g, (m, n: string) => {
		const span = spans[Number(n)];
		if (!span) return m;
		const tex = escapeHtml(span.tex);
		return span.display
			? `<span class="math math-display" data-display="1">\\[${tex}\\]</span>`
			: `<span class="math" data-display="0">\\(${tex}\\)</span>`;
	});
}

/** Renders Markdown to (unsanitised) HTML and says which enhancements the result needs. */
export function renderMarkdown(src: string): Rendered {
	const { text, spans } = extractMath(src);
	const raw = marked.parse(text, { async: false }) as string;
	const html = spans.length ? restoreMath(raw, spans) : raw;
	return {
		html,
		hasMath: spans.length > 0,
		hasMermaid: html.includes('class="mermaid-block"'),
		hasCode: html.includes('<pre><code')
	};
}

/** The TeX of a rendered math span (its text without the `\(`/`\[` delimiters). */
export function texOf(text: string): string {
	return text.replace(/^\\[[(]/, '').replace(/\\[\])]$/, '');
}
