// The Files tab's memory (ui.md §1): where the reader was (`piface.session.files-view:<id>`, this tab only)
// and the recently opened files of a root (`piface.directory.recent-files:<root>`, all tabs). Also which
// directory a session's Files tab starts in and which agent serves it. Validation lives here, so a stale
// or foreign entry is ignored rather than trusted.

import type { SessionRecord } from '../api/types';
import { parseJson, type Storages } from '../persistence/storage';
import { isInside, normalize } from './paths';

/** Recent files kept per root. */
export const RECENT_LIMIT = 8;

export const filesKeys = {
	view: (id: string) => `piface.session.files-view:${id}`,
	recent: (root: string) => `piface.directory.recent-files:${encodeURIComponent(root)}`
};

export interface FilesView {
	currentPath: string;
	selectedPath: string | null;
	previewFullscreen?: boolean;
}

/** The directory the Files tab starts in: the execution dir of a worktree session, else the working dir. */
export function filesRoot(r: Pick<SessionRecord, 'working_dir' | 'execution_dir' | 'workspace_mode'>): string {
	const dir = r.workspace_mode === 'git_worktree' && r.execution_dir ? r.execution_dir : r.working_dir;
	return normalize(dir || '/');
}

/** The name of the agent that runs the session (the `agent` query parameter), or undefined for the local one. */
export function sessionAgent(r: Pick<SessionRecord, 'agent'> | null | undefined): string | undefined {
	const a = r?.agent;
	if (typeof a === 'string') return a || undefined;
	if (a && typeof a === 'object') return a.name || a.id || a.hostname || undefined;
	return undefined;
}

const absolute = (v: unknown): v is string => typeof v === 'string' && v.startsWith('/');

export function loadFilesView(s: Storages, id: string): FilesView | null {
	let raw: string | null = null;
	try {
		raw = s.session?.getItem(filesKeys.view(id)) ?? null;
	} catch {
		raw = null;
	}
	const v = parseJson(raw) as Partial<FilesView> | null;
	if (!v || typeof v !== 'object' || !absolute(v.currentPath)) return null;
	return {
		currentPath: normalize(v.currentPath),
		selectedPath: absolute(v.selectedPath) ? normalize(v.selectedPath) : null,
		...(v.previewFullscreen === true ? { previewFullscreen: true } : {})
	};
}

export function saveFilesView(s: Storages, id: string, view: FilesView): boolean {
	try {
		if (!s.session) return false;
		s.session.setItem(filesKeys.view(id), JSON.stringify(view));
		return true;
	} catch {
		return false;
	}
}

/** `list` with `path` in front: only paths inside `root`, no duplicates, at most RECENT_LIMIT. */
export function pushRecent(list: readonly string[], path: string, root: string): string[] {
	const p = normalize(path);
	const rest = list.filter((x) => x !== p && isInside(root, x));
	return (isInside(root, p) ? [p, ...rest] : rest).slice(0, RECENT_LIMIT);
}

export function loadRecent(s: Storages, root: string): string[] {
	let raw: string | null = null;
	try {
		raw = s.local?.getItem(filesKeys.recent(root)) ?? null;
	} catch {
		raw = null;
	}
	const v = parseJson(raw);
	if (!Array.isArray(v)) return [];
	return v.filter((x): x is string => absolute(x) && isInside(root, x)).slice(0, RECENT_LIMIT);
}

export function saveRecent(s: Storages, root: string, list: readonly string[]): void {
	try {
		s.local?.setItem(filesKeys.recent(root), JSON.stringify(list));
	} catch {
		// Recent files are a convenience: a full storage loses only them.
	}
}
