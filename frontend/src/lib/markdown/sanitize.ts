// DOMPurify over rendered Markdown: model output in the chat and Markdown files in the Files tab (browser only;
// the specs run it in jsdom). On top of DOMPurify's defaults (no scripts, no event handlers, no `javascript:`
// URLs) this profile drops what lets a model answer or a file act on the reader's behalf or look like the UI:
// forms and their controls (a fake login box, a form posting elsewhere), `<style>` and `style="…"` (restyling
// or covering the page), frames and plugins, and every source that makes the browser fetch from another origin
// (remote images leak that the page was read, and from where). Links keep working: they open in a new tab
// without an opener. The math and Mermaid placeholders' classes and data attributes survive.
//
// Not here: Markdown rendering (render.ts) and what runs after insertion (enhance.ts; it calls
// `stripUnsafeLinks` on MathJax's output, which is made from TeX after sanitising).

import DOMPurify from 'dompurify';

/** Elements removed (DOMPurify keeps the text inside most of them, e.g. a button's label, as plain text). */
export const FORBID_TAGS = [
	'form',
	'input',
	'button',
	'textarea',
	'select',
	'option',
	'optgroup',
	'datalist',
	'style',
	'link',
	'iframe',
	'frame',
	'frameset',
	'object',
	'embed',
	'portal'
];

/** Attributes removed wherever they appear: responsive sources (each candidate would need checking, and a
 * model has no reason to send them), inline styles, form targets, click pings and table backgrounds. */
export const FORBID_ATTR = ['srcset', 'style', 'action', 'formaction', 'ping', 'background'];

/** Attributes whose URL the browser fetches on its own (not on a click). */
const FETCHING = new Set(['src', 'poster', 'data']);
/** `href` fetches on SVG's `<image>`, `<use>`, `<feImage>`; on links (`<a>`, `<area>`) it is a navigation. */
const HREFS = new Set(['href', 'xlink:href']);
const LINK_TAGS = new Set(['a', 'area']);

// DOMPurify's default URI rule plus `blob:` (a page's own object URLs).
const ALLOWED_URI_REGEXP = /^(?:(?:(?:f|ht)tps?|mailto|tel|callto|sms|cid|xmpp|matrix|blob):|[^a-z]|[a-z+.\-]+(?:[^a-z+.\-:]|$))/i;

/** What the URL parser ignores (controls and spaces, tabs and newlines inside): `java\tscript:` is `javascript:`. */
const URL_WHITESPACE = /[\u0000-\u0020\u00A0\u1680\u180E\u2000-\u2029\u205F\u3000]/g;

/** Links that may stay in markup made after sanitising: http(s), mailto, or no scheme at all. */
const SAFE_LINK = /^(?:(?:https?|mailto):|[^a-z]|[a-z+.\-]+(?:[^a-z+.\-:]|$))/i;

/** Whether loading `url` stays on `origin`: a relative or same-origin URL, or `data:` / `blob:` (which the
 * browser resolves without a request to another host). `//host/x`, `/\host/x` and absolute URLs on another
 * origin are not. Parsed with the URL standard's parser, as the browser will. */
export function isLocalUrl(url: string, origin: string): boolean {
	const v = url.trim();
	if (/^(data|blob):/i.test(v)) return true;
	try {
		return new URL(v, origin + '/').origin === origin;
	} catch {
		return false;
	}
}

type Purifier = ReturnType<typeof DOMPurify>;
let purifier: Purifier | null = null;

/** Our own DOMPurify instance, so its hooks never meet Mermaid's (Mermaid adds and removes hooks on the
 * shared default instance). */
function instance(): Purifier {
	if (purifier) return purifier;
	const p = DOMPurify(window);
	const blocked = new WeakSet<Element>();
	p.addHook('uponSanitizeAttribute', (node, data) => {
		const name = data.attrName;
		const tag = node.nodeName.toLowerCase();
		const fetches = FETCHING.has(name) || (HREFS.has(name) && !LINK_TAGS.has(tag));
		if (fetches && !isLocalUrl(data.attrValue, location.origin)) {
			data.keepAttr = false;
			blocked.add(node);
		}
	});
	p.addHook('afterSanitizeAttributes', (node) => {
		if (node.tagName === 'A' && node.getAttribute('href')) {
			node.setAttribute('target', '_blank');
			node.setAttribute('rel', 'noopener noreferrer');
		}
		if (node.tagName === 'IMG' && blocked.has(node)) {
			// The image stays as its alt text, marked, so the reader sees something was left out.
			node.classList.add('remote-blocked');
			node.setAttribute('title', 'Remote image not loaded');
		}
	});
	purifier = p;
	return p;
}

// A start tag with its attributes (quoted values may hold `>`); attributes may be separated by `/`, as
// browsers allow (`<img/src=x/onerror=…>`).
// An unquoted value runs to the next blank or `>`, as browsers read it.
const START_TAG = /<[a-zA-Z][^\s/>]*(?:[\s/]*[^\s"'>/=]+(?:\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?)*[\s/]*>/g;
const ATTRIBUTE = /([\s/]+)([^\s"'>/=]+)(\s*=\s*(?:"[^"]*"|'[^']*'|[^\s>]+))?/g;

/** Takes event-handler attributes (`onerror=…`, `onload=…`) out of the start tags of `html`, as text. Not a
 * defence (DOMPurify drops them anyway, and the page's Content-Security-Policy would block them): Chromium
 * reports a CSP violation for every inline handler it merely parses, even in DOMPurify's inert document, and
 * the e2e suites fail on any violation. A tag this does not recognise is left to DOMPurify. */
export function disarmHandlers(html: string): string {
	if (!/\son|\/on/i.test(html)) return html;
	return html.replace(START_TAG, (tag) => {
		const nameEnd = tag.search(/[\s/>]/);
		const head = tag.slice(0, nameEnd);
		const rest = tag.slice(nameEnd);
		return head + rest.replace(ATTRIBUTE, (whole, _sep: string, name: string) => (/^on./i.test(name) ? '' : whole));
	});
}

/** Sanitises rendered Markdown for insertion with `{@html}`. */
export function sanitize(html: string): string {
	return instance().sanitize(disarmHandlers(html), {
		ADD_ATTR: ['target'],
		FORBID_TAGS,
		FORBID_ATTR,
		ALLOWED_URI_REGEXP
	});
}

/** Removes links that would run script or open data (`javascript:`, `data:`, `vbscript:`…) from markup made
 * after sanitising, e.g. MathJax's SVG for `\href{…}{…}`; relative and http(s)/mailto links stay. */
export function stripUnsafeLinks(root: Element): void {
	for (const el of [root, ...root.querySelectorAll('*')]) {
		for (const attr of [...el.attributes]) {
			if (attr.localName !== 'href') continue;
			if (!SAFE_LINK.test(attr.value.replace(URL_WHITESPACE, ''))) el.removeAttributeNode(attr);
		}
	}
}
