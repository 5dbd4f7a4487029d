import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import { AUTO_HIGHLIGHT_LIMIT, copyChoices, copyLabel, copyPayload, formatSize, fsErrorText, HIGHLIGHT_LIMIT, highlightPlan, isTooLarge, languageFor, markdownTarget, sortEntries } from './preview';

describe('languageFor', () => {
	it.each([
		['main.rs', 'rust'],
		['App.TSX', 'typescript'],
		['x.svelte', 'xml'],
		['Cargo.toml', 'ini'],
		['Cargo.lock', 'ini'],
		['script.sh', 'bash'],
		['.envrc', 'bash'],
		['.env', 'bash'],
		['data.json', 'json'],
		['notes.txt', null],
		['Makefile', 'makefile'],
		['archive.tar.gz', null],
		['style.scss', 'scss'],
		['app.rb', 'ruby'],
		['Gemfile', 'ruby'],
		['index.php', 'php'],
		['Main.kt', 'kotlin'],
		['View.swift', 'swift'],
		['init.lua', 'lua'],
		['Program.cs', 'csharp']
	])('%s → %s', (name, lang) => expect(languageFor(name)).toBe(lang));
});

describe('highlightPlan', () => {
	it('uses the language of the name, else automatic detection for a small file, else nothing', () => {
		expect(highlightPlan('app.rb', 100)).toEqual({ mode: 'language', language: 'ruby' });
		expect(highlightPlan('notes', 100)).toEqual({ mode: 'auto' });
		expect(highlightPlan('notes', 0)).toEqual({ mode: 'none' });
		expect(highlightPlan('notes', AUTO_HIGHLIGHT_LIMIT + 1)).toEqual({ mode: 'none' });
		expect(highlightPlan('app.rb', HIGHLIGHT_LIMIT + 1)).toEqual({ mode: 'none' });
	});
});

describe('copyChoices', () => {
	it('offers the source, the relative and the absolute path', () => {
		expect(copyChoices({ kind: 'code', content: 'x = 1', path: '/repo/src/a.py' }, '/repo')).toEqual([
			{ label: 'Copy source', value: 'x = 1' },
			{ label: 'Copy relative path', value: 'src/a.py' },
			{ label: 'Copy absolute path', value: '/repo/src/a.py' }
		]);
		expect(copyChoices({ kind: 'image', content: null, path: '/elsewhere/b.png' }, '/repo')).toEqual([{ label: 'Copy absolute path', value: '/elsewhere/b.png' }]);
	});
});

describe('sortEntries', () => {
	it('puts directories first and sorts names naturally, ignoring case', () => {
		const e = (name: string, is_dir = false) => ({ name, path: `/r/${name}`, is_dir });
		const sorted = sortEntries([e('b.txt'), e('src', true), e('A.md'), e('.git', true), e('file10'), e('file2')]);
		expect(sorted.map((x) => x.name)).toEqual(['.git', 'src', 'A.md', 'b.txt', 'file2', 'file10']);
	});
});

describe('formatSize', () => {
	it.each([
		[0, '0 B'],
		[1023, '1023 B'],
		[1536, '1.5 KiB'],
		[524_288, '512 KiB'],
		[10 * 1024 * 1024, '10 MiB'],
		[-1, '?']
	])('%d → %s', (n, s) => expect(formatSize(n)).toBe(s));
});

describe('markdownTarget', () => {
	it('resolves relative references against the file directory', () => {
		expect(markdownTarget('img/logo.png', '/repo/docs')).toBe('/repo/docs/img/logo.png');
		expect(markdownTarget('../README.md#install', '/repo/docs')).toBe('/repo/README.md');
		expect(markdownTarget('./my%20file.png?raw=1', '/repo')).toBe('/repo/my file.png');
		expect(markdownTarget('/etc/motd', '/repo')).toBe('/etc/motd');
	});

	it('leaves other schemes, anchors and protocol-relative URLs alone', () => {
		for (const u of ['https://example.com/x.png', 'mailto:a@b.c', 'data:image/png;base64,AAA', '#heading', '//cdn/x.js', '', 'javascript:alert(1)']) {
			expect(markdownTarget(u, '/repo')).toBeNull();
		}
	});

	it('keeps a malformed escape as written', () => {
		expect(markdownTarget('100%.png', '/repo')).toBe('/repo/100%.png');
	});
});

describe('copyPayload', () => {
	it('copies the text of code and Markdown', () => {
		expect(copyPayload({ kind: 'code', content: 'fn main() {}', path: '/repo/a.rs' }, '/repo')).toBe('fn main() {}');
		expect(copyPayload({ kind: 'markdown', content: '', path: '/repo/a.md' }, '/repo')).toBe('');
		expect(copyLabel('code')).toBe('Copy source');
	});

	it('falls back to the path relative to the root, then the absolute path', () => {
		expect(copyPayload({ kind: 'image', content: null, path: '/repo/img/a.png' }, '/repo')).toBe('img/a.png');
		expect(copyPayload({ kind: 'binary', content: null, path: '/etc/x.bin' }, '/repo')).toBe('/etc/x.bin');
		expect(copyLabel('image')).toBe('Copy path');
	});
});

describe('fsErrorText', () => {
	it('explains the statuses the endpoints return', () => {
		expect(fsErrorText(new ApiError(413, 'File too large to preview. Max 524288 bytes.'), 'preview')).toMatch(/too large to preview/);
		expect(fsErrorText(new ApiError(403, 'Permission denied: /root'), 'list')).toBe('Not allowed: Permission denied: /root');
		expect(fsErrorText(new ApiError(404, 'Unknown agent: x'), 'list')).toBe('Not found: Unknown agent: x');
		expect(fsErrorText(new ApiError(400, 'Not a directory: /x'), 'list')).toBe('Not a directory: /x');
		expect(fsErrorText(new TypeError('Failed to fetch'), 'list')).toBe('Failed to fetch');
		expect(isTooLarge(new ApiError(413, 'x'))).toBe(true);
		expect(isTooLarge(new ApiError(400, 'x'))).toBe(false);
	});
});
