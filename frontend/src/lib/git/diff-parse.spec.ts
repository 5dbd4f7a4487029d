import { describe, expect, it } from 'vitest';
import { diffStats, displayPath, parseUnifiedDiff, unquotePath } from './diff-parse';

// Real `git diff` output (git 2.x), generated from a scratch repository.
const WORKTREE = [
	'diff --git a/a.txt b/a.txt',
	'index f384549..679246e 100644',
	'--- a/a.txt',
	'+++ b/a.txt',
	'@@ -1,4 +1,5 @@',
	' one',
	'-two',
	'+TWO!',
	' three',
	'-four',
	'+-- dashed',
	'+four',
	'\\ No newline at end of file',
	'diff --git a/b.bin b/b.bin',
	'index 88768ef..3e3315e 100644',
	'Binary files a/b.bin and b/b.bin differ',
	'diff --git a/sp ace.txt b/sp ace.txt',
	'index 2fa992c..5ea2ed4 100644',
	'--- a/sp ace.txt\t',
	'+++ b/sp ace.txt\t',
	'@@ -1 +1 @@',
	'-keep',
	'+changed',
	'diff --git "a/t\\303\\251st.txt" "b/t\\303\\251st.txt"',
	'deleted file mode 100644',
	'index 587be6b..0000000',
	'--- "a/t\\303\\251st.txt"',
	'+++ /dev/null',
	'@@ -1 +0,0 @@',
	'-x',
	''
].join('\n');

const RENAME = [
	'diff --git a/r.txt b/r2.txt',
	'similarity index 78%',
	'rename from r.txt',
	'rename to r2.txt',
	'index 4083766..c39dddd 100644',
	'--- a/r.txt',
	'+++ b/r2.txt',
	'@@ -7,4 +7,4 @@ line6',
	' line7',
	' line8',
	' line9',
	'-line10',
	'+line10 changed',
	''
].join('\n');

const UNTRACKED = ['diff --git a/n.txt b/n.txt', 'new file mode 100644', 'index 0000000..07f33c4', '--- /dev/null', '+++ b/n.txt', '@@ -0,0 +1,2 @@', '+new', '+file', ''].join('\n');

describe('parseUnifiedDiff', () => {
	it('reads modified, binary, spaced and quoted, deleted files', () => {
		const files = parseUnifiedDiff(WORKTREE);
		expect(files.map((f) => [f.oldPath, f.newPath, f.change, f.binary])).toEqual([
			['a.txt', 'a.txt', 'modified', false],
			['b.bin', 'b.bin', 'modified', true],
			['sp ace.txt', 'sp ace.txt', 'modified', false],
			['tést.txt', null, 'deleted', false]
		]);
		const [a] = files;
		expect(a!.hunks).toHaveLength(1);
		expect(a!.hunks[0]).toMatchObject({ oldStart: 1, oldLines: 4, newStart: 1, newLines: 5, section: '' });
		expect(a!.hunks[0]!.lines).toEqual([
			{ kind: 'context', text: 'one', oldNo: 1, newNo: 1 },
			{ kind: 'del', text: 'two', oldNo: 2, newNo: null },
			{ kind: 'add', text: 'TWO!', oldNo: null, newNo: 2 },
			{ kind: 'context', text: 'three', oldNo: 3, newNo: 3 },
			{ kind: 'del', text: 'four', oldNo: 4, newNo: null },
			{ kind: 'add', text: '-- dashed', oldNo: null, newNo: 4 },
			{ kind: 'add', text: 'four', oldNo: null, newNo: 5, noNewline: true }
		]);
		expect(files[1]!.hunks).toEqual([]);
		expect(files[1]!.meta).toContain('Binary files a/b.bin and b/b.bin differ');
		expect(files[3]!.oldMode).toBe('100644');
		expect(diffStats(a!)).toEqual({ added: 3, removed: 2 });
	});

	it('reads renames with their section text', () => {
		const [f] = parseUnifiedDiff(RENAME);
		expect(f).toMatchObject({ oldPath: 'r.txt', newPath: 'r2.txt', change: 'renamed' });
		expect(f!.meta).toEqual(['similarity index 78%', 'index 4083766..c39dddd 100644']);
		expect(f!.hunks[0]!.section).toBe('line6');
		expect(f!.hunks[0]!.lines[0]).toEqual({ kind: 'context', text: 'line7', oldNo: 7, newNo: 7 });
		expect(displayPath(f!)).toBe('r.txt → r2.txt');
	});

	it('reads an untracked file shown against /dev/null', () => {
		const [f] = parseUnifiedDiff(UNTRACKED);
		expect(f).toMatchObject({ oldPath: null, newPath: 'n.txt', change: 'added', newMode: '100644' });
		expect(f!.hunks[0]!.lines.map((l) => [l.kind, l.newNo])).toEqual([
			['add', 1],
			['add', 2]
		]);
		expect(displayPath(f!)).toBe('n.txt');
	});

	it('keeps a deleted line that looks like a file header inside its hunk', () => {
		const text = ['diff --git a/x b/x', '--- a/x', '+++ b/x', '@@ -1,2 +1,1 @@', '--- not a header', '++++ nor this', ' ctx'].join('\n');
		const f = parseUnifiedDiff(text.replace('++++ nor this', '+++ nor this').replace('@@ -1,2 +1,1 @@', '@@ -1,2 +1,2 @@'));
		expect(f).toHaveLength(1);
		expect(f[0]!.hunks[0]!.lines.map((l) => [l.kind, l.text])).toEqual([
			['del', '-- not a header'],
			['add', '++ nor this'],
			['context', 'ctx']
		]);
	});

	it('parses plain diff -u output and CRLF line ends', () => {
		const text = '--- old.txt\t2024-01-01 00:00:00\r\n+++ new.txt\t2024-01-02 00:00:00\r\n@@ -1 +1 @@\r\n-a\r\n+b\r\n';
		const [f] = parseUnifiedDiff(text);
		expect(f).toMatchObject({ oldPath: 'old.txt', newPath: 'new.txt', change: 'modified' });
		expect(f!.hunks[0]!.lines.map((l) => l.text)).toEqual(['a', 'b']);
	});

	it('survives a diff cut short and empty input', () => {
		const cut = RENAME.split('\n').slice(0, 10).join('\n');
		const [f] = parseUnifiedDiff(cut);
		expect(f!.hunks[0]!.lines).toHaveLength(2);
		expect(parseUnifiedDiff('')).toEqual([]);
		expect(parseUnifiedDiff('no diff here\n')).toEqual([]);
	});

	it('treats a blank line inside a hunk as an empty context line', () => {
		const [f] = parseUnifiedDiff(['--- a/x', '+++ b/x', '@@ -1,3 +1,3 @@', ' a', '', '-b', '+c'].join('\n'));
		expect(f!.hunks[0]!.lines.map((l) => [l.kind, l.text, l.oldNo, l.newNo])).toEqual([
			['context', 'a', 1, 1],
			['context', '', 2, 2],
			['del', 'b', 3, null],
			['add', 'c', null, 3]
		]);
	});

	it('reads mode changes and copies', () => {
		const [m, c] = parseUnifiedDiff(
			['diff --git a/s.sh b/s.sh', 'old mode 100644', 'new mode 100755', 'diff --git a/a b/b', 'similarity index 100%', 'copy from a', 'copy to b'].join('\n')
		);
		expect(m).toMatchObject({ oldMode: '100644', newMode: '100755', change: 'modified', hunks: [] });
		expect(c).toMatchObject({ oldPath: 'a', newPath: 'b', change: 'copied' });
	});
});

describe('unquotePath', () => {
	it('decodes C-style escapes and octal UTF-8 bytes', () => {
		expect(unquotePath('"t\\303\\251st.txt"')).toBe('tést.txt');
		expect(unquotePath('"a\\tb\\"c\\\\d"')).toBe('a\tb"c\\d');
		expect(unquotePath('plain name')).toBe('plain name');
	});
});
