// The Diff tab's reading of `GET …/git/status` (porcelain v1 XY codes): badges, the code as shown, which
// side of a file's changes to open first, and labels. Pure; the endpoint calls are in api.ts.

export interface GitFile {
	path: string;
	/** The two-letter XY code, e.g. `" M"`, `"R "`, `"??"`. */
	status: string;
	staged: boolean;
	unstaged: boolean;
	untracked: boolean;
	old_path: string | null;
}

export interface GitStatus {
	is_repo: boolean;
	repo_root: string | null;
	branch: string | null;
	head: string | null;
	files: GitFile[];
}

export interface GitDiff {
	is_repo: boolean;
	repo_root: string | null;
	path: string | null;
	staged: boolean;
	diff: string;
	truncated: boolean;
}

const MEANING: Record<string, string> = {
	M: 'modified',
	A: 'added',
	D: 'deleted',
	R: 'renamed',
	C: 'copied',
	T: 'type changed',
	U: 'unmerged',
	'?': 'untracked',
	'!': 'ignored'
};

/** The XY code as the contract shows it: spaces as `·`. */
export function displayCode(status: string): string {
	return status.padEnd(2, ' ').replace(/ /g, '·');
}

/** What one status letter means (`M` → modified), or null for a space. */
export function codeMeaning(letter: string): string | null {
	return MEANING[letter] ?? null;
}

export type BadgeKind = 'staged' | 'unstaged' | 'untracked' | 'conflict';

export interface Badge {
	kind: BadgeKind;
	label: string;
	/** A sentence for the tooltip and screen readers. */
	title: string;
}

/** The badges of a file: untracked alone, else staged and/or unstaged with what changed on each side. */
export function badges(f: GitFile): Badge[] {
	const x = f.status[0] ?? ' ';
	const y = f.status[1] ?? ' ';
	if (f.untracked) return [{ kind: 'untracked', label: 'untracked', title: 'Untracked: not in the index yet' }];
	if (x === 'U' || y === 'U' || (x === 'A' && y === 'A') || (x === 'D' && y === 'D')) {
		return [{ kind: 'conflict', label: 'conflict', title: 'Unmerged: resolve the conflict' }];
	}
	const out: Badge[] = [];
	if (f.staged) out.push({ kind: 'staged', label: 'staged', title: `Staged: ${codeMeaning(x) ?? 'changed'}` });
	if (f.unstaged) out.push({ kind: 'unstaged', label: 'unstaged', title: `Unstaged: ${codeMeaning(y) ?? 'changed'}` });
	return out;
}

/** The side to open first: staged only when the file has staged and no unstaged changes (untracked → unstaged). */
export function defaultStaged(f: GitFile): boolean {
	return f.staged && !f.unstaged && !f.untracked;
}

/** Whether a side of a file has anything to show. */
export function hasSide(f: GitFile, staged: boolean): boolean {
	return staged ? f.staged : f.unstaged || f.untracked;
}

/** The path to show: `old → new` for renames and copies. */
export function statusPath(f: GitFile): string {
	return f.old_path ? `${f.old_path} → ${f.path}` : f.path;
}

/** The main change of a file as one word, for its row (the staged side wins). */
export function changeWord(f: GitFile): string {
	if (f.untracked) return 'untracked';
	const x = codeMeaning(f.status[0] ?? ' ');
	const y = codeMeaning(f.status[1] ?? ' ');
	return (f.staged ? x : null) ?? y ?? x ?? 'changed';
}
