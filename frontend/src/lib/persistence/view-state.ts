// Per-session view persistence (ui.md §1 and §3): the snapshot shown instantly while a session loads, the
// view state (tab, scroll position, unsent draft), the scratch text, and the branch prefill. Validation lives
// here so a stale or foreign entry is ignored rather than trusted.

import type { PiMessage } from '../api/protocol';
import type { SessionRecord } from '../api/types';
import { parseJson, readBoth, readPreference, remove, writeBoth, writePreference, type Storages } from './storage';

export const TABS = ['chat', 'files', 'diff', 'terminal', 'scratch'] as const;
export type Tab = (typeof TABS)[number];

/** Snapshots older than this are ignored. */
export const SNAPSHOT_TTL_MS = 30 * 60 * 1000;
/** Within this distance of the bottom, the chat counts as scrolled to the bottom. */
export const BOTTOM_SLACK_PX = 48;

export const keys = {
	snapshot: (id: string) => `piface.session.snapshot:${id}`,
	view: (id: string) => `piface.session.view:${id}`,
	scratch: (id: string) => `piface.session.scratch:${id}`,
	branchPrefill: (id: string) => `piface_branch_prefill:${id}`
};

export function isTab(v: unknown): v is Tab {
	return typeof v === 'string' && (TABS as readonly string[]).includes(v);
}

export interface Snapshot {
	sessionId: string;
	session: SessionRecord;
	messages: PiMessage[];
	activeTab: Tab;
	timestamp: number;
}

export function saveSnapshot(s: Storages, snap: Snapshot): boolean {
	return writeBoth(s, keys.snapshot(snap.sessionId), JSON.stringify(snap));
}

/** The stored snapshot of `id` if it is valid, for that id, and younger than 30 minutes. */
export function loadSnapshot(s: Storages, id: string, now: number): Snapshot | null {
	const v = parseJson(readBoth(s, keys.snapshot(id))) as Partial<Snapshot> | null;
	if (!v || typeof v !== 'object') return null;
	if (v.sessionId !== id || !isTab(v.activeTab) || typeof v.timestamp !== 'number') return null;
	if (!Array.isArray(v.messages) || !v.session || typeof v.session !== 'object') return null;
	if (now - v.timestamp > SNAPSHOT_TTL_MS || v.timestamp > now + 60_000) return null;
	return v as Snapshot;
}

export type ChatScroll = { mode: 'bottom' } | { mode: 'offset'; offsetFromBottom: number };

export interface ViewState {
	activeTab: Tab;
	chatScroll?: ChatScroll;
	composerDraft?: string;
	timestamp: number;
}

export function saveView(s: Storages, id: string, view: ViewState): boolean {
	return writeBoth(s, keys.view(id), JSON.stringify(view));
}

export function loadView(s: Storages, id: string): ViewState | null {
	const v = parseJson(readBoth(s, keys.view(id))) as Partial<ViewState> | null;
	if (!v || typeof v !== 'object' || !isTab(v.activeTab)) return null;
	const out: ViewState = { activeTab: v.activeTab, timestamp: typeof v.timestamp === 'number' ? v.timestamp : 0 };
	const scroll = v.chatScroll as Partial<{ mode: string; offsetFromBottom: unknown }> | undefined;
	if (scroll?.mode === 'bottom') out.chatScroll = { mode: 'bottom' };
	else if (scroll?.mode === 'offset' && typeof scroll.offsetFromBottom === 'number' && scroll.offsetFromBottom >= 0) {
		out.chatScroll = { mode: 'offset', offsetFromBottom: scroll.offsetFromBottom };
	}
	if (typeof v.composerDraft === 'string') out.composerDraft = v.composerDraft;
	return out;
}

/** Captures a scroll position as the contract stores it: bottom when within 48 px. */
export function captureScroll(el: { scrollTop: number; scrollHeight: number; clientHeight: number }): ChatScroll {
	const offset = Math.max(0, el.scrollHeight - el.clientHeight - el.scrollTop);
	return offset <= BOTTOM_SLACK_PX ? { mode: 'bottom' } : { mode: 'offset', offsetFromBottom: Math.round(offset) };
}

/** The `scrollTop` that restores `scroll` in an element of the given size. */
export function scrollTopFor(scroll: ChatScroll, el: { scrollHeight: number; clientHeight: number }): number {
	const max = Math.max(0, el.scrollHeight - el.clientHeight);
	return scroll.mode === 'bottom' ? max : Math.max(0, max - scroll.offsetFromBottom);
}

/** The tab to show: the URL's `?tab=` wins, then the stored view state, then chat. */
export function initialTab(urlTab: string | null, stored: ViewState | null): Tab {
	if (isTab(urlTab)) return urlTab;
	return stored?.activeTab ?? 'chat';
}

/** The URL search string for `tab` (chat is the absence of `tab`), keeping other parameters. */
export function searchWithTab(search: string, tab: Tab): string {
	const params = new URLSearchParams(search);
	if (tab === 'chat') params.delete('tab');
	else params.set('tab', tab);
	const q = params.toString();
	return q ? `?${q}` : '';
}

export function loadScratch(s: Storages, id: string): string {
	try {
		return s.local?.getItem(keys.scratch(id)) ?? '';
	} catch {
		return '';
	}
}

/** Saves the scratch text to localStorage; false when the storage refuses. */
export function saveScratch(s: Storages, id: string, text: string): boolean {
	try {
		if (!s.local) return false;
		s.local.setItem(keys.scratch(id), text);
		return true;
	} catch {
		return false;
	}
}

export function storeBranchPrefill(s: Storages, newId: string, text: string): void {
	try {
		s.session?.setItem(keys.branchPrefill(newId), text);
	} catch {
		// The prefill is a convenience; losing it loses nothing else.
	}
}

/** Reads the branch prefill once and removes it. */
export function takeBranchPrefill(s: Storages, id: string): string | null {
	let v: string | null = null;
	try {
		v = s.session?.getItem(keys.branchPrefill(id)) ?? null;
	} catch {
		v = null;
	}
	if (v !== null) remove(s, keys.branchPrefill(id), 'session');
	return v;
}

// Re-exported for the theme module, which stores preferences the same way.
export { readPreference, writePreference };
