// What the Files tab shows for a file, decided without a browser: the highlight.js language of a file name,
// the order of a listing, sizes for humans, the Markdown link rewriting of previews, what "Copy source"
// copies, and the error texts.

import { ApiError } from '../api/client';
import type { FilePreview, FsEntry } from './api';
import { joinPath, relativeTo } from './paths';

/** Code above this many characters is shown without highlighting (highlight.js would stall a phone). */
export const HIGHLIGHT_LIMIT = 200_000;

/** Automatic detection tries all 36 grammars: only for files up to this many characters. */
export const AUTO_HIGHLIGHT_LIMIT = 50_000;

// Languages of highlight.js's common set (markdown/highlight.ts), by extension.
const LANGUAGE_BY_EXT: Record<string, string> = {
	sh: 'bash', bash: 'bash', zsh: 'bash', env: 'bash',
	c: 'c', h: 'c',
	cc: 'cpp', cpp: 'cpp', cxx: 'cpp', hpp: 'cpp', hh: 'cpp',
	cs: 'csharp', csx: 'csharp',
	css: 'css', scss: 'scss', less: 'less',
	diff: 'diff', patch: 'diff',
	go: 'go',
	graphql: 'graphql', gql: 'graphql',
	java: 'java',
	js: 'javascript', jsx: 'javascript', mjs: 'javascript', cjs: 'javascript',
	json: 'json', jsonc: 'json', jsonl: 'json',
	kt: 'kotlin', kts: 'kotlin',
	lua: 'lua',
	mk: 'makefile', mak: 'makefile',
	md: 'markdown', markdown: 'markdown', mdx: 'markdown',
	m: 'objectivec', mm: 'objectivec',
	pl: 'perl', pm: 'perl',
	php: 'php', phtml: 'php',
	py: 'python', pyi: 'python',
	r: 'r',
	rb: 'ruby', rake: 'ruby', gemspec: 'ruby', ru: 'ruby',
	rs: 'rust',
	sql: 'sql',
	swift: 'swift',
	ts: 'typescript', tsx: 'typescript', mts: 'typescript', cts: 'typescript',
	vb: 'vbnet',
	wat: 'wasm', wast: 'wasm',
	xml: 'xml', html: 'xml', htm: 'xml', svg: 'xml', svelte: 'xml', vue: 'xml',
	yaml: 'yaml', yml: 'yaml',
	toml: 'ini', ini: 'ini', cfg: 'ini', conf: 'ini', lock: 'ini'
};

const LANGUAGE_BY_NAME: Record<string, string> = {
	'.bashrc': 'bash', '.profile': 'bash', '.zshrc': 'bash', '.envrc': 'bash', '.env': 'bash',
	'.gitconfig': 'ini', '.editorconfig': 'ini',
	'package-lock.json': 'json',
	makefile: 'makefile', gnumakefile: 'makefile',
	gemfile: 'ruby', rakefile: 'ruby', podfile: 'ruby'
};

/** Every language `languageFor` can answer (the spec checks highlight.js knows them all). */
export const MAPPED_LANGUAGES: readonly string[] = [...new Set([...Object.values(LANGUAGE_BY_EXT), ...Object.values(LANGUAGE_BY_NAME)])];

/** How a code preview is highlighted: in the language of its name, by automatic detection (no language from
 * the name, as the original's `highlightAuto`), or not at all (too large). */
export type HighlightPlan = { mode: 'language'; language: string } | { mode: 'auto' } | { mode: 'none' };

export function highlightPlan(fileName: string, length: number): HighlightPlan {
	if (length > HIGHLIGHT_LIMIT) return { mode: 'none' };
	const language = languageFor(fileName);
	if (language) return { mode: 'language', language };
	return length > 0 && length <= AUTO_HIGHLIGHT_LIMIT ? { mode: 'auto' } : { mode: 'none' };
}

/** The highlight.js language for a file name, or null for plain text. */
export function languageFor(fileName: string): string | null {
	const name = fileName.toLowerCase();
	if (LANGUAGE_BY_NAME[name]) return LANGUAGE_BY_NAME[name];
	const dot = name.lastIndexOf('.');
	if (dot <= 0 && !name.startsWith('.')) return null;
	return LANGUAGE_BY_EXT[name.slice(dot + 1)] ?? null;
}

/** Directories first, then files, each by name, case-insensitively (the server sorts by raw bytes). */
export function sortEntries(entries: FsEntry[]): FsEntry[] {
	const collator = new Intl.Collator(undefined, { sensitivity: 'base', numeric: true });
	return [...entries].sort((a, b) => (a.is_dir === b.is_dir ? collator.compare(a.name, b.name) : a.is_dir ? -1 : 1));
}

/** `1536` → `1.5 KiB`. */
export function formatSize(bytes: number): string {
	if (!Number.isFinite(bytes) || bytes < 0) return '?';
	if (bytes < 1024) return `${bytes} B`;
	const units = ['KiB', 'MiB', 'GiB', 'TiB'];
	let v = bytes / 1024;
	let i = 0;
	while (v >= 1024 && i < units.length - 1) {
		v /= 1024;
		i++;
	}
	return `${v >= 10 ? Math.round(v) : Math.round(v * 10) / 10} ${units[i]}`;
}

/**
 * Where a link or image of a previewed Markdown file points: the absolute path of a relative or absolute
 * file reference (resolved against the file's directory, query and fragment dropped, percent-escapes
 * decoded), or null for what must stay as written (other schemes, `//host`, in-page anchors, empty).
 */
export function markdownTarget(url: string, fileDir: string): string | null {
	const u = url.trim();
	if (!u || u.startsWith('#') || u.startsWith('//') || /^[a-z][a-z0-9+.-]*:/i.test(u)) return null;
	const bare = u.replace(/[?#].*$/, '');
	if (!bare) return null;
	let decoded = bare;
	try {
		decoded = decodeURIComponent(bare);
	} catch {
		// A stray `%`: keep the text as written.
	}
	return joinPath(fileDir, decoded);
}

/** What "Copy source" copies: the text of code and Markdown, else the path relative to the root, else the absolute path. */
export function copyPayload(preview: Pick<FilePreview, 'kind' | 'content' | 'path'>, root: string): string {
	if ((preview.kind === 'code' || preview.kind === 'markdown') && typeof preview.content === 'string') return preview.content;
	const rel = relativeTo(root, preview.path);
	return rel && rel !== '.' ? rel : preview.path;
}

/** One entry of the preview's copy menu. */
export interface CopyChoice {
	label: string;
	value: string;
}

/** The copy menu of a preview (as the original's): the source of code and Markdown, the path relative to the
 * session's root when the file lies inside it, and the absolute path. */
export function copyChoices(preview: Pick<FilePreview, 'kind' | 'content' | 'path'>, root: string): CopyChoice[] {
	const out: CopyChoice[] = [];
	if ((preview.kind === 'code' || preview.kind === 'markdown') && typeof preview.content === 'string') {
		out.push({ label: 'Copy source', value: preview.content });
	}
	const rel = relativeTo(root, preview.path);
	if (rel && rel !== '.') out.push({ label: 'Copy relative path', value: rel });
	out.push({ label: 'Copy absolute path', value: preview.path });
	return out;
}

/** The label of the copy button for a preview kind. */
export function copyLabel(kind: FilePreview['kind']): string {
	return kind === 'code' || kind === 'markdown' ? 'Copy source' : 'Copy path';
}

/** A sentence for a failed listing or preview, by status. */
export function fsErrorText(err: unknown, what: 'list' | 'preview'): string {
	if (err instanceof ApiError) {
		if (err.status === 413) return what === 'preview' ? 'This file is too large to preview (the limit is 512 KiB). Open it raw instead.' : err.detail;
		if (err.status === 403) return `Not allowed: ${err.detail}`;
		if (err.status === 404) return `Not found: ${err.detail}`;
		return err.detail;
	}
	return err instanceof Error ? err.message : String(err);
}

/** Whether an error means "too large to preview", so the UI can offer the raw link. */
export function isTooLarge(err: unknown): boolean {
	return err instanceof ApiError && err.status === 413;
}
