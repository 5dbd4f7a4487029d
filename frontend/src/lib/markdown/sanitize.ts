// DOMPurify over rendered Markdown (browser only). Links open in a new tab without an opener; the math and
// mermaid placeholders' classes and data attributes survive.

import DOMPurify from 'dompurify';

let hooked = false;

export function sanitize(html: string): string {
	if (!hooked) {
		DOMPurify.addHook('afterSanitizeAttributes', (node) => {
			if (node.tagName === 'A' && node.getAttribute('href')) {
				node.setAttribute('target', '_blank');
				node.setAttribute('rel', 'noopener noreferrer');
			}
		});
		hooked = true;
	}
	return DOMPurify.sanitize(html, { ADD_ATTR: ['target'] });
}
