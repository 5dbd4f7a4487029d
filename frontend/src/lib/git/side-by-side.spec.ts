import { describe, expect, it } from 'vitest';
import { parseUnifiedDiff } from './diff-parse';
import { changedSpan, splitAtSpan, splitRows, unifiedRows } from './side-by-side';

const file = (lines: string[]) => parseUnifiedDiff(['--- a/x', '+++ b/x', ...lines].join('\n'))[0]!;

describe('changedSpan', () => {
	it('finds the differing middle', () => {
		expect(changedSpan('let x = 1;', 'let x = 42;')).toEqual([8, 9, 10]);
		expect(changedSpan('abc', 'abXc')).toEqual([2, 2, 3]);
		expect(changedSpan('same', 'same')).toBeNull();
		expect(changedSpan('abc', 'xyz')).toBeNull();
		expect(changedSpan('aaa', 'aa')).toEqual([2, 3, 2]);
	});

	it('splits text at a span', () => {
		expect(splitAtSpan('let x = 1;', [8, 9])).toEqual(['let x = ', '1', ';']);
		expect(splitAtSpan('plain', undefined)).toEqual(['plain', '', '']);
	});
});

describe('splitRows', () => {
	it('pairs deletions with the additions that replace them and pads the shorter side', () => {
		const rows = splitRows(file(['@@ -1,5 +1,5 @@', ' a', '-b', '-c', '+B', '+C', '+D', ' e', '-f']));
		expect(rows[0]).toEqual({ type: 'hunk', header: '@@ -1,5 +1,5 @@' });
		const lines = rows.slice(1).map((r) => (r.type === 'line' ? [r.left?.no ?? null, r.left?.text ?? null, r.right?.no ?? null, r.right?.text ?? null] : r));
		expect(lines).toEqual([
			[1, 'a', 1, 'a'],
			[2, 'b', 2, 'B'],
			[3, 'c', 3, 'C'],
			[null, null, 4, 'D'],
			[4, 'e', 5, 'e'],
			[5, 'f', null, null]
		]);
	});

	it('marks the changed part of paired lines', () => {
		const rows = splitRows(file(['@@ -1 +1 @@', '-let x = 1;', '+let x = 42;']));
		expect(rows[1]).toEqual({
			type: 'line',
			left: { no: 1, text: 'let x = 1;', kind: 'del', changed: [8, 9] },
			right: { no: 1, text: 'let x = 42;', kind: 'add', changed: [8, 10] }
		});
	});

	it('starts a new block when a deletion follows additions', () => {
		const rows = splitRows(file(['@@ -1,2 +1,2 @@', '-a', '+A', '-b', '+B']));
		expect(rows.slice(1).map((r) => (r.type === 'line' ? [r.left?.text, r.right?.text] : null))).toEqual([
			['a', 'A'],
			['b', 'B']
		]);
	});

	it('gives a hunk row per hunk and nothing for a binary file', () => {
		const f = parseUnifiedDiff(['diff --git a/m b/m', '--- a/m', '+++ b/m', '@@ -1 +1 @@', '-x', '+y', '@@ -9 +9 @@', '-p', '+q'].join('\n'))[0]!;
		expect(splitRows(f).filter((r) => r.type === 'hunk')).toHaveLength(2);
		const bin = parseUnifiedDiff('diff --git a/b b/b\nBinary files a/b and b/b differ\n')[0]!;
		expect(splitRows(bin)).toEqual([]);
	});
});

describe('unifiedRows', () => {
	it('keeps the diff order with line numbers and intraline spans', () => {
		const rows = unifiedRows(file(['@@ -1,2 +1,2 @@', ' ctx', '-let x = 1;', '+let x = 42;']));
		expect(rows).toEqual([
			{ type: 'hunk', header: '@@ -1,2 +1,2 @@' },
			{ type: 'line', kind: 'context', oldNo: 1, newNo: 1, text: 'ctx' },
			{ type: 'line', kind: 'del', oldNo: 2, newNo: null, text: 'let x = 1;', changed: [8, 9] },
			{ type: 'line', kind: 'add', oldNo: null, newNo: 2, text: 'let x = 42;', changed: [8, 10] }
		]);
	});
});
