// A parser for unified diffs as `git diff` prints them (also `--no-index` and plain `diff -u` output): files,
// their header facts (new, deleted, renamed, binary, modes) and hunks with line numbers. Pure and tolerant:
// a diff cut short (the server truncates at 512 KiB) parses up to where it stops, and unknown header lines
// are kept as `meta` rather than rejected.

export type LineKind = 'context' | 'add' | 'del';

export interface DiffLine {
	kind: LineKind;
	text: string;
	/** Line number in the old file (context and deleted lines). */
	oldNo: number | null;
	/** Line number in the new file (context and added lines). */
	newNo: number | null;
	/** Followed by `\ No newline at end of file`. */
	noNewline?: boolean;
}

export interface Hunk {
	header: string;
	oldStart: number;
	oldLines: number;
	newStart: number;
	newLines: number;
	/** The text after the second `@@` (often the enclosing function). */
	section: string;
	lines: DiffLine[];
}

export type FileChange = 'modified' | 'added' | 'deleted' | 'renamed' | 'copied';

export interface FileDiff {
	/** Path before the change (null for an added file). */
	oldPath: string | null;
	/** Path after the change (null for a deleted file). */
	newPath: string | null;
	change: FileChange;
	binary: boolean;
	oldMode: string | null;
	newMode: string | null;
	/** Extended header lines (`index …`, `similarity index …`, unknown ones), for display. */
	meta: string[];
	hunks: Hunk[];
}

const HUNK = /^@@ -(\d+)(?:,(\d+))? \+(\d+)(?:,(\d+))? @@ ?(.*)$/;

/** Decodes git's C-style quoted path (`"a/t\303\251st\tx"`); unquoted text is returned as is. */
export function unquotePath(s: string): string {
	if (!(s.length >= 2 && s.startsWith('"') && s.endsWith('"'))) return s;
	const bytes: number[] = [];
	const body = s.slice(1, -1);
	const utf8 = new TextEncoder();
	const simple: Record<string, number> = { a: 7, b: 8, t: 9, n: 10, v: 11, f: 12, r: 13, '"': 34, '\\': 92 };
	for (let i = 0; i < body.length; i++) {
		const c = body[i]!;
		if (c !== '\\') {
			bytes.push(...utf8.encode(c));
			continue;
		}
		const next = body[i + 1] ?? '';
		if (/[0-7]/.test(next)) {
			const oct = /^[0-7]{1,3}/.exec(body.slice(i + 1))![0];
			bytes.push(parseInt(oct, 8) & 0xff);
			i += oct.length;
		} else if (next in simple) {
			bytes.push(simple[next]!);
			i += 1;
		} else {
			bytes.push(92);
		}
	}
	return new TextDecoder().decode(new Uint8Array(bytes));
}

/** A path from a `---`/`+++` line: null for /dev/null, else without its `a/`/`b/` prefix and timestamp. */
function markerPath(rest: string, prefix: 'a/' | 'b/'): string | null {
	let p = rest;
	if (!p.startsWith('"')) p = p.replace(/\t.*$/, ''); // `diff -u` appends a tab and a timestamp
	p = unquotePath(p.trim());
	if (p === '/dev/null') return null;
	return p.startsWith(prefix) ? p.slice(2) : p;
}

/** The two paths of a `diff --git` line; best effort when unquoted paths contain spaces. */
function gitHeaderPaths(rest: string): [string | null, string | null] {
	const quoted = /^("(?:[^"\\]|\\.)*"|\S+) ("(?:[^"\\]|\\.)*"|\S+)$/.exec(rest);
	if (quoted && (rest.startsWith('"') || rest.endsWith('"') || rest.split(' ').length === 2)) {
		const a = unquotePath(quoted[1]!);
		const b = unquotePath(quoted[2]!);
		return [a.replace(/^a\//, ''), b.replace(/^b\//, '')];
	}
	// `a/P b/P` with spaces in P: the two halves are the same path when the file was not renamed.
	const half = (rest.length - 1) / 2;
	if (Number.isInteger(half) && rest.startsWith('a/') && rest.slice(half + 1).startsWith('b/') && rest.slice(2, half) === rest.slice(half + 3)) {
		const p = rest.slice(2, half);
		return [p, p];
	}
	const m = /^a\/(.*) b\/(.*)$/.exec(rest);
	return m ? [m[1]!, m[2]!] : [null, null];
}

function newFile(oldPath: string | null, newPath: string | null): FileDiff {
	return { oldPath, newPath, change: 'modified', binary: false, oldMode: null, newMode: null, meta: [], hunks: [] };
}

/** Parses unified diff text into files. Lines outside any file (e.g. a commit message) are ignored. */
export function parseUnifiedDiff(text: string): FileDiff[] {
	const files: FileDiff[] = [];
	let file: FileDiff | null = null;
	let hunk: Hunk | null = null;
	let oldLeft = 0;
	let newLeft = 0;
	let oldNo = 0;
	let newNo = 0;

	const lines = text.split('\n');
	if (lines.length && lines[lines.length - 1] === '') lines.pop();

	for (let i = 0; i < lines.length; i++) {
		const raw = lines[i]!;
		const line = raw.endsWith('\r') ? raw.slice(0, -1) : raw;

		// Inside a hunk, its counts decide what a line is: a deleted "-- x" line is not a file header.
		if (hunk && (oldLeft > 0 || newLeft > 0)) {
			const c = line[0];
			if (c === '\\') {
				const last = hunk.lines[hunk.lines.length - 1];
				if (last) last.noNewline = true;
				continue;
			}
			if (c === '+' && newLeft > 0) {
				hunk.lines.push({ kind: 'add', text: line.slice(1), oldNo: null, newNo: newNo++ });
				newLeft--;
				continue;
			}
			if (c === '-' && oldLeft > 0) {
				hunk.lines.push({ kind: 'del', text: line.slice(1), oldNo: oldNo++, newNo: null });
				oldLeft--;
				continue;
			}
			if ((c === ' ' || line === '') && oldLeft > 0 && newLeft > 0) {
				hunk.lines.push({ kind: 'context', text: line.slice(1), oldNo: oldNo++, newNo: newNo++ });
				oldLeft--;
				newLeft--;
				continue;
			}
			// Counts and content disagree: fall through and treat the line as a header.
			hunk = null;
		}

		if (line.startsWith('\\') && hunk) {
			const last = hunk.lines[hunk.lines.length - 1];
			if (last) last.noNewline = true;
			continue;
		}

		if (line.startsWith('diff --git ')) {
			const [a, b] = gitHeaderPaths(line.slice('diff --git '.length));
			file = newFile(a, b);
			files.push(file);
			hunk = null;
			continue;
		}

		const h = HUNK.exec(line);
		if (h && file) {
			hunk = {
				header: line,
				oldStart: Number(h[1]),
				oldLines: h[2] === undefined ? 1 : Number(h[2]),
				newStart: Number(h[3]),
				newLines: h[4] === undefined ? 1 : Number(h[4]),
				section: h[5] ?? '',
				lines: []
			};
			file.hunks.push(hunk);
			oldLeft = hunk.oldLines;
			newLeft = hunk.newLines;
			oldNo = hunk.oldStart;
			newNo = hunk.newStart;
			continue;
		}

		if (line.startsWith('--- ') && lines[i + 1]?.startsWith('+++ ')) {
			const oldPath = markerPath(line.slice(4), 'a/');
			const newPath = markerPath(lines[i + 1]!.replace(/\r$/, '').slice(4), 'b/');
			// A plain `diff -u` has no `diff --git` line: the markers start the file.
			if (!file || file.hunks.length > 0) {
				file = newFile(oldPath, newPath);
				files.push(file);
			} else {
				file.oldPath = oldPath;
				file.newPath = newPath;
			}
			if (oldPath === null) file.change = 'added';
			else if (newPath === null) file.change = 'deleted';
			i += 1;
			hunk = null;
			continue;
		}

		if (!file) continue;
		if (line.startsWith('new file mode ')) {
			file.change = 'added';
			file.newMode = line.slice('new file mode '.length);
			file.oldPath = null;
		} else if (line.startsWith('deleted file mode ')) {
			file.change = 'deleted';
			file.oldMode = line.slice('deleted file mode '.length);
			file.newPath = null;
		} else if (line.startsWith('old mode ')) {
			file.oldMode = line.slice('old mode '.length);
		} else if (line.startsWith('new mode ')) {
			file.newMode = line.slice('new mode '.length);
		} else if (line.startsWith('rename from ') || line.startsWith('copy from ')) {
			const copy = line.startsWith('copy');
			file.change = copy ? 'copied' : 'renamed';
			file.oldPath = unquotePath(line.slice(copy ? 10 : 12));
		} else if (line.startsWith('rename to ') || line.startsWith('copy to ')) {
			file.newPath = unquotePath(line.slice(line.startsWith('copy') ? 8 : 10));
		} else if (/^Binary files .* differ$/.test(line) || line === 'GIT binary patch') {
			file.binary = true;
			file.meta.push(line);
		} else if (line.trim()) {
			file.meta.push(line);
		}
	}
	return files;
}

/** Lines added and removed in a file. */
export function diffStats(file: FileDiff): { added: number; removed: number } {
	let added = 0;
	let removed = 0;
	for (const h of file.hunks) for (const l of h.lines) l.kind === 'add' ? added++ : l.kind === 'del' ? removed++ : 0;
	return { added, removed };
}

/** The path to show for a file: `old → new` for renames and copies. */
export function displayPath(file: FileDiff): string {
	if ((file.change === 'renamed' || file.change === 'copied') && file.oldPath && file.newPath && file.oldPath !== file.newPath) {
		return `${file.oldPath} → ${file.newPath}`;
	}
	return file.newPath ?? file.oldPath ?? '(unknown file)';
}
