import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { SessionRecord } from '../api/types';
import { debounce } from './debounce';
import { MemoryStorage, readPreference, writePreference, type Storages } from './storage';
import {
	captureScroll,
	initialTab,
	keys,
	loadScratch,
	loadSnapshot,
	loadView,
	saveScratch,
	saveSnapshot,
	saveView,
	scrollTopFor,
	searchWithTab,
	SNAPSHOT_TTL_MS,
	storeBranchPrefill,
	takeBranchPrefill
} from './view-state';

const session = { piface_id: 's1', working_dir: '/w', status: 'live' } as SessionRecord;
let local: MemoryStorage;
let sess: MemoryStorage;
let s: Storages;

beforeEach(() => {
	local = new MemoryStorage();
	sess = new MemoryStorage();
	s = { local, session: sess };
});

describe('storage fallback', () => {
	it('reads local first, then session', () => {
		sess.setItem('k', 'from-session');
		expect(readPreference(s, 'k')).toBe('from-session');
		local.setItem('k', 'from-local');
		expect(readPreference(s, 'k')).toBe('from-local');
	});

	it('writes to session storage when local refuses, and survives no storage at all', () => {
		local.failWrites = true;
		expect(writePreference(s, 'k', 'v')).toBe(true);
		expect(sess.getItem('k')).toBe('v');
		expect(writePreference({ local: null, session: null }, 'k', 'v')).toBe(false);
		expect(readPreference({ local: null, session: null }, 'k')).toBeNull();
	});

	it('treats a throwing storage as empty', () => {
		const broken = { getItem: () => { throw new Error('denied'); }, setItem: () => { throw new Error('denied'); }, removeItem: () => {} };
		expect(readPreference({ local: broken, session: sess }, 'k')).toBeNull();
	});
});

describe('snapshots', () => {
	const now = 1_000_000_000;
	const snap = { sessionId: 's1', session, messages: [{ role: 'user', content: 'hi' }], activeTab: 'chat' as const, timestamp: now };

	it('round-trips through both storages', () => {
		expect(saveSnapshot(s, snap)).toBe(true);
		expect(local.getItem(keys.snapshot('s1'))).toBe(sess.getItem(keys.snapshot('s1')));
		expect(loadSnapshot(s, 's1', now + 1000)).toEqual(snap);
	});

	it('falls back to localStorage when sessionStorage is empty (a new tab)', () => {
		saveSnapshot(s, snap);
		sess.map.clear();
		expect(loadSnapshot(s, 's1', now)).toEqual(snap);
	});

	it('ignores expired, foreign and invalid snapshots', () => {
		saveSnapshot(s, snap);
		expect(loadSnapshot(s, 's1', now + SNAPSHOT_TTL_MS + 1)).toBeNull();
		local.setItem(keys.snapshot('s2'), JSON.stringify({ ...snap, sessionId: 's1' }));
		sess.setItem(keys.snapshot('s2'), JSON.stringify({ ...snap, sessionId: 's1' }));
		expect(loadSnapshot(s, 's2', now)).toBeNull();
		sess.setItem(keys.snapshot('s1'), JSON.stringify({ ...snap, activeTab: 'nope' }));
		expect(loadSnapshot(s, 's1', now)).toBeNull();
		sess.setItem(keys.snapshot('s1'), '{not json');
		expect(loadSnapshot(s, 's1', now)).toBeNull();
	});
});

describe('view state', () => {
	it('round-trips tab, scroll and draft and drops invalid parts', () => {
		saveView(s, 's1', { activeTab: 'scratch', chatScroll: { mode: 'offset', offsetFromBottom: 300 }, composerDraft: 'half', timestamp: 5 });
		expect(loadView(s, 's1')).toEqual({ activeTab: 'scratch', chatScroll: { mode: 'offset', offsetFromBottom: 300 }, composerDraft: 'half', timestamp: 5 });
		sess.setItem(keys.view('s1'), JSON.stringify({ activeTab: 'chat', chatScroll: { mode: 'offset', offsetFromBottom: -1 } }));
		expect(loadView(s, 's1')).toEqual({ activeTab: 'chat', timestamp: 0 });
		sess.setItem(keys.view('s1'), JSON.stringify({ activeTab: 'bogus' }));
		expect(loadView(s, 's1')).toBeNull();
	});

	it('captures the bottom within 48 px and restores offsets', () => {
		expect(captureScroll({ scrollTop: 960, scrollHeight: 2000, clientHeight: 1000 })).toEqual({ mode: 'bottom' });
		expect(captureScroll({ scrollTop: 500, scrollHeight: 2000, clientHeight: 1000 })).toEqual({ mode: 'offset', offsetFromBottom: 500 });
		expect(scrollTopFor({ mode: 'bottom' }, { scrollHeight: 3000, clientHeight: 1000 })).toBe(2000);
		expect(scrollTopFor({ mode: 'offset', offsetFromBottom: 500 }, { scrollHeight: 3000, clientHeight: 1000 })).toBe(1500);
		expect(scrollTopFor({ mode: 'offset', offsetFromBottom: 5000 }, { scrollHeight: 3000, clientHeight: 1000 })).toBe(0);
	});

	it('lets the URL tab win and mirrors the tab into the URL', () => {
		expect(initialTab('diff', { activeTab: 'scratch', timestamp: 0 })).toBe('diff');
		expect(initialTab('bogus', { activeTab: 'scratch', timestamp: 0 })).toBe('scratch');
		expect(initialTab(null, null)).toBe('chat');
		expect(searchWithTab('?tab=files&x=1', 'chat')).toBe('?x=1');
		expect(searchWithTab('', 'terminal')).toBe('?tab=terminal');
		expect(searchWithTab('?tab=files', 'chat')).toBe('');
	});
});

describe('scratch and branch prefill', () => {
	it('keeps scratch text in localStorage and reports a refusing storage', () => {
		expect(saveScratch(s, 's1', 'notes')).toBe(true);
		expect(loadScratch(s, 's1')).toBe('notes');
		local.failWrites = true;
		expect(saveScratch(s, 's1', 'more')).toBe(false);
		expect(saveScratch({ local: null, session: sess }, 's1', 'x')).toBe(false);
	});

	it('reads the branch prefill once', () => {
		storeBranchPrefill(s, 'n1', 'redo this');
		expect(takeBranchPrefill(s, 'n1')).toBe('redo this');
		expect(takeBranchPrefill(s, 'n1')).toBeNull();
	});
});

describe('debounce', () => {
	beforeEach(() => vi.useFakeTimers());
	afterEach(() => vi.useRealTimers());

	it('runs the last call after the wait, or at once on flush, or never after cancel', () => {
		const calls: string[] = [];
		const d = debounce((v: string) => calls.push(v), 2000);
		d('a');
		d('b');
		vi.advanceTimersByTime(1999);
		expect(calls).toEqual([]);
		vi.advanceTimersByTime(1);
		expect(calls).toEqual(['b']);
		d('c');
		expect(d.pending()).toBe(true);
		d.flush();
		expect(calls).toEqual(['b', 'c']);
		d('d');
		d.cancel();
		vi.advanceTimersByTime(5000);
		expect(calls).toEqual(['b', 'c']);
	});
});
