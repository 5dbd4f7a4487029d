// highlight.js with its "common" set of 36 languages (the original's: Ruby, PHP, Kotlin, Swift, Lua, C#… as well
// as the usual ones), loaded on demand by enhance.ts and the Files tab's CodeView (its own chunk). Chat code
// fences are highlighted only in the language they name; a Files preview whose extension names no language is
// highlighted by automatic detection, as the original did. Not here: which extension means which language
// (files/preview.ts `languageFor`) and how large a file may be to be highlighted (`highlightPlan`).

import hljs from 'highlight.js/lib/common';

hljs.registerAliases(['shell', 'zsh', 'console'], { languageName: 'bash' });
hljs.registerAliases(['toml'], { languageName: 'ini' });
hljs.registerAliases(['html', 'svg', 'svelte', 'vue'], { languageName: 'xml' });
hljs.registerAliases(['jsonc', 'jsonl'], { languageName: 'json' });

/** Whether highlight.js knows `name` (a language or an alias). */
export function knowsLanguage(name: string): boolean {
	return hljs.getLanguage(name) !== undefined;
}

/** Highlights a `<code class="language-…">` in place; nothing for an unknown or missing language. */
export function highlightElement(el: HTMLElement): void {
	const lang = /language-([\w-]+)/.exec(el.className)?.[1];
	if (!lang || !hljs.getLanguage(lang)) return;
	hljs.highlightElement(el);
}

/** The highlighted HTML of `text` (highlight.js escapes the text itself) and the language used: the named one
 * when known, else the one automatic detection picks (null when it finds none, the text then only escaped). */
export function highlightCode(text: string, language: string | null): { html: string; language: string | null } {
	if (language && hljs.getLanguage(language)) {
		return { html: hljs.highlight(text, { language, ignoreIllegals: true }).value, language };
	}
	const auto = hljs.highlightAuto(text);
	return { html: auto.value, language: auto.language ?? null };
}
