import { describe, expect, it } from 'vitest';
import { badges, changeWord, codeMeaning, defaultStaged, displayCode, hasSide, statusPath, type GitFile } from './status';

const f = (status: string, extra: Partial<GitFile> = {}): GitFile => {
	const x = status[0]!;
	const y = status[1]!;
	return {
		path: 'p',
		status,
		staged: x !== ' ' && x !== '?',
		unstaged: y !== ' ' && y !== '?',
		untracked: status === '??',
		old_path: null,
		...extra
	};
};

describe('status codes', () => {
	it('shows spaces as middle dots', () => {
		expect(displayCode(' M')).toBe('·M');
		expect(displayCode('M ')).toBe('M·');
		expect(displayCode('??')).toBe('??');
		expect(displayCode('R')).toBe('R·');
	});

	it('names the letters', () => {
		expect(codeMeaning('M')).toBe('modified');
		expect(codeMeaning('R')).toBe('renamed');
		expect(codeMeaning(' ')).toBeNull();
	});
});

describe('badges', () => {
	it('shows staged and unstaged sides with their meaning', () => {
		expect(badges(f('MM')).map((b) => [b.kind, b.title])).toEqual([
			['staged', 'Staged: modified'],
			['unstaged', 'Unstaged: modified']
		]);
		expect(badges(f('A ')).map((b) => b.kind)).toEqual(['staged']);
		expect(badges(f(' D')).map((b) => [b.kind, b.title])).toEqual([['unstaged', 'Unstaged: deleted']]);
		expect(badges(f('??')).map((b) => b.kind)).toEqual(['untracked']);
		expect(badges(f('UU')).map((b) => b.kind)).toEqual(['conflict']);
		expect(badges(f('AA')).map((b) => b.kind)).toEqual(['conflict']);
	});
});

describe('defaultStaged / hasSide', () => {
	it('opens staged only when nothing is unstaged', () => {
		expect(defaultStaged(f('M '))).toBe(true);
		expect(defaultStaged(f('MM'))).toBe(false);
		expect(defaultStaged(f(' M'))).toBe(false);
		expect(defaultStaged(f('??'))).toBe(false);
		expect(defaultStaged(f('R '))).toBe(true);
	});

	it('knows which sides have changes', () => {
		expect(hasSide(f('M '), false)).toBe(false);
		expect(hasSide(f('M '), true)).toBe(true);
		expect(hasSide(f('??'), false)).toBe(true);
		expect(hasSide(f('??'), true)).toBe(false);
	});
});

describe('labels', () => {
	it('shows renames with their old path and one change word', () => {
		expect(statusPath(f('R ', { path: 'new.ts', old_path: 'old.ts' }))).toBe('old.ts → new.ts');
		expect(statusPath(f(' M', { path: 'a.ts' }))).toBe('a.ts');
		expect(changeWord(f('R '))).toBe('renamed');
		expect(changeWord(f(' D'))).toBe('deleted');
		expect(changeWord(f('AM'))).toBe('added');
		expect(changeWord(f('??'))).toBe('untracked');
	});
});
