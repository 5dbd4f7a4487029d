// Rows for showing a parsed diff: side by side (deleted lines on the left paired with the added lines that
// replace them, context on both sides) or unified, plus the changed middle of a paired line for intraline
// highlighting. Pure; the view renders the rows as they come.

import type { DiffLine, FileDiff, Hunk, LineKind } from './diff-parse';

export interface Cell {
	no: number;
	text: string;
	kind: LineKind;
	/** For a paired changed line: the [start, end) of the part that differs from its partner. */
	changed?: [number, number];
}

export type SplitRow =
	| { type: 'hunk'; header: string }
	| { type: 'line'; left: Cell | null; right: Cell | null };

export type UnifiedRow =
	| { type: 'hunk'; header: string }
	| { type: 'line'; kind: LineKind; oldNo: number | null; newNo: number | null; text: string; changed?: [number, number] };

/**
 * The differing middle of two lines: `[start, endA, endB]` after the common prefix and suffix, or null when
 * the lines are equal or share nothing (then highlighting the whole line says nothing).
 */
export function changedSpan(a: string, b: string): [number, number, number] | null {
	if (a === b) return null;
	let start = 0;
	const max = Math.min(a.length, b.length);
	while (start < max && a[start] === b[start]) start++;
	let endA = a.length;
	let endB = b.length;
	while (endA > start && endB > start && a[endA - 1] === b[endB - 1]) {
		endA--;
		endB--;
	}
	if (start === 0 && endA === a.length && endB === b.length) return null;
	return [start, endA, endB];
}

/** A hunk as a sequence of context lines and change blocks (deletions, then the additions replacing them). */
type Segment = { context: DiffLine } | { dels: DiffLine[]; adds: DiffLine[] };

function segments(hunk: Hunk): Segment[] {
	const out: Segment[] = [];
	let block: { dels: DiffLine[]; adds: DiffLine[] } | null = null;
	for (const line of hunk.lines) {
		if (line.kind === 'context') {
			block = null;
			out.push({ context: line });
			continue;
		}
		// A deletion after additions starts a new change block.
		if (!block || (line.kind === 'del' && block.adds.length)) {
			block = { dels: [], adds: [] };
			out.push(block);
		}
		(line.kind === 'del' ? block.dels : block.adds).push(line);
	}
	return out;
}

/** Intraline spans of the i-th deletion and i-th addition of a block. */
function blockSpans(dels: DiffLine[], adds: DiffLine[]): Map<DiffLine, [number, number]> {
	const spans = new Map<DiffLine, [number, number]>();
	for (let i = 0; i < Math.min(dels.length, adds.length); i++) {
		const s = changedSpan(dels[i]!.text, adds[i]!.text);
		if (s) {
			spans.set(dels[i]!, [s[0], s[1]]);
			spans.set(adds[i]!, [s[0], s[2]]);
		}
	}
	return spans;
}

function cell(line: DiffLine, no: number | null, span: [number, number] | undefined): Cell {
	return { no: no ?? 0, text: line.text, kind: line.kind, ...(span ? { changed: span } : {}) };
}

/** Side-by-side rows of a file: a hunk row before each hunk, then its lines. */
export function splitRows(file: FileDiff): SplitRow[] {
	const out: SplitRow[] = [];
	for (const hunk of file.hunks) {
		out.push({ type: 'hunk', header: hunk.header });
		for (const seg of segments(hunk)) {
			if ('context' in seg) {
				const l = seg.context;
				out.push({ type: 'line', left: cell(l, l.oldNo, undefined), right: cell(l, l.newNo, undefined) });
				continue;
			}
			const spans = blockSpans(seg.dels, seg.adds);
			for (let i = 0; i < Math.max(seg.dels.length, seg.adds.length); i++) {
				const d = seg.dels[i];
				const a = seg.adds[i];
				out.push({
					type: 'line',
					left: d ? cell(d, d.oldNo, spans.get(d)) : null,
					right: a ? cell(a, a.newNo, spans.get(a)) : null
				});
			}
		}
	}
	return out;
}

/** Unified rows of a file (the diff's own order), with the same intraline spans as the split view. */
export function unifiedRows(file: FileDiff): UnifiedRow[] {
	const out: UnifiedRow[] = [];
	for (const hunk of file.hunks) {
		out.push({ type: 'hunk', header: hunk.header });
		for (const seg of segments(hunk)) {
			const lines = 'context' in seg ? [seg.context] : [...seg.dels, ...seg.adds];
			const spans = 'context' in seg ? null : blockSpans(seg.dels, seg.adds);
			for (const l of lines) {
				const span = spans?.get(l);
				out.push({ type: 'line', kind: l.kind, oldNo: l.oldNo, newNo: l.newNo, text: l.text, ...(span ? { changed: span } : {}) });
			}
		}
	}
	return out;
}

/** Splits a line into the parts before, inside and after its changed span (for `<mark>`). */
export function splitAtSpan(text: string, span: [number, number] | undefined): [string, string, string] {
	if (!span) return [text, '', ''];
	return [text.slice(0, span[0]), text.slice(span[0], span[1]), text.slice(span[1])];
}
