import { describe, expect, it } from 'vitest';
import { MAPPED_LANGUAGES } from '../files/preview';
import { highlightCode, knowsLanguage } from './highlight';

describe('highlight.js set', () => {
	it("registers the original's common languages, among them Ruby, PHP, Kotlin, Swift and Lua", () => {
		for (const lang of ['ruby', 'php', 'kotlin', 'swift', 'lua', 'csharp', 'perl', 'r', 'scss', 'makefile', 'rust', 'typescript']) {
			expect(knowsLanguage(lang), lang).toBe(true);
		}
	});

	it('knows every language the Files tab maps a name to', () => {
		expect(MAPPED_LANGUAGES.filter((l) => !knowsLanguage(l))).toEqual([]);
	});

	it('highlights a named language and detects one when none is named', () => {
		const ruby = highlightCode('def greet(name)\n  puts "hi #{name}"\nend\n', 'ruby');
		expect(ruby.language).toBe('ruby');
		expect(ruby.html).toContain('<span class="hljs-keyword">def</span>');
		const auto = highlightCode('<?php\nfunction hello($name) {\n  echo "Hello, " . $name;\n}\n', null);
		expect(auto.language).toMatch(/^php/);
		expect(auto.html).toContain('hljs-');
	});

	it('escapes the text', () => {
		expect(highlightCode('<img src=x onerror=alert(1)>', 'lua').html).not.toContain('<img');
	});
});
