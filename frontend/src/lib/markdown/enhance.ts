// After a Markdown block is in the DOM: copy buttons on code blocks, and the heavy renderers loaded on
// demand, each in its own chunk (no CDN: everything is bundled, so a phone on a tailnet without internet
// access renders math and diagrams too). Highlighting in chat is ours (the original highlighted only file
// previews); it only adds classes, so the text stays the same.

import { texOf } from './render';
import { stripUnsafeLinks } from './sanitize';

export interface EnhanceOptions {
	dark: boolean;
}

/** Enhances the Markdown rendered inside `root`. Safe to call again on the same content. */
export function enhance(root: HTMLElement, opts: EnhanceOptions): void {
	for (const pre of root.querySelectorAll<HTMLPreElement>('pre:not(.mermaid-source)')) addCopyButton(pre);
	const code = root.querySelectorAll<HTMLElement>('pre > code[class*="language-"]:not([data-highlighted])');
	if (code.length) void highlight(code);
	const math = root.querySelectorAll<HTMLElement>('span.math:not([data-typeset])');
	if (math.length) void typeset(math);
	const diagrams = root.querySelectorAll<HTMLElement>('.mermaid-block:not([data-rendered])');
	if (diagrams.length) void renderMermaid(diagrams, opts.dark);
}

function addCopyButton(pre: HTMLPreElement): void {
	if (pre.parentElement?.classList.contains('code-wrap')) return;
	const wrap = document.createElement('div');
	wrap.className = 'code-wrap';
	pre.replaceWith(wrap);
	wrap.appendChild(pre);
	const button = document.createElement('button');
	button.type = 'button';
	button.className = 'copy-code';
	button.textContent = 'copy';
	button.setAttribute('aria-label', 'Copy code');
	button.addEventListener('click', async () => {
		const { copyText } = await import('../ui/clipboard');
		const ok = await copyText(pre.textContent ?? '');
		button.textContent = ok ? 'copied' : 'failed';
		setTimeout(() => (button.textContent = 'copy'), 1500);
	});
	wrap.appendChild(button);
}

async function highlight(blocks: NodeListOf<HTMLElement>): Promise<void> {
	const { highlightElement } = await import('./highlight');
	for (const el of blocks) highlightElement(el);
}

async function typeset(spans: NodeListOf<HTMLElement>): Promise<void> {
	try {
		const { texToSvg } = await import('./mathjax');
		for (const span of spans) {
			span.dataset.typeset = '1';
			const display = span.dataset.display === '1';
			const tex = texOf(span.textContent ?? '');
			try {
				const out = texToSvg(tex, display);
				// `\href{…}` becomes a link in the SVG, made after sanitising: keep only harmless targets.
				if (out instanceof Element) stripUnsafeLinks(out);
				span.replaceChildren(out);
				span.title = tex;
			} catch {
				span.classList.add('math-error');
			}
		}
	} catch (err) {
		console.warn('MathJax failed to load', err);
	}
}

let mermaidCounter = 0;

async function renderMermaid(blocks: NodeListOf<HTMLElement>, dark: boolean): Promise<void> {
	let mermaid: typeof import('mermaid').default;
	try {
		mermaid = (await import('mermaid')).default;
	} catch (err) {
		console.warn('Mermaid failed to load', err);
		return;
	}
	mermaid.initialize({ startOnLoad: false, securityLevel: 'strict', theme: dark ? 'dark' : 'default' });
	for (const block of blocks) {
		block.dataset.rendered = '1';
		const source = block.querySelector('code')?.textContent ?? '';
		const details = document.createElement('details');
		details.className = 'mermaid-details';
		const summary = document.createElement('summary');
		summary.textContent = 'Diagram source';
		const pre = block.querySelector('pre');
		details.append(summary);
		if (pre) details.append(pre);
		const out = document.createElement('div');
		out.className = 'mermaid-diagram';
		block.replaceChildren(out, details);
		try {
			const { svg } = await mermaid.render(`piface-mermaid-${++mermaidCounter}`, source);
			out.innerHTML = svg;
		} catch (err) {
			out.className = 'mermaid-error';
			out.textContent = `Diagram error: ${err instanceof Error ? err.message : String(err)}`;
			details.open = true;
			// Mermaid leaves its error SVG in the body; remove it.
			document.getElementById(`dpiface-mermaid-${mermaidCounter}`)?.remove();
		}
	}
}
