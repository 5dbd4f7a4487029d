import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { childPrefix, closedCombo, comboKey, completable, createCompleter, MAX_SUGGESTIONS, suggestDirs, withItems, type ComboState } from './dir-complete';

const list = (...items: string[]): ComboState => ({ items, active: -1, open: true });

describe('listbox keys', () => {
	it('moves through the options with the arrows, wrapping around', () => {
		let s = list('/a', '/b', '/c');
		const keys = ['ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowDown', 'ArrowUp', 'ArrowUp'];
		const seen = keys.map((k) => (s = comboKey(s, k).state).active);
		expect(seen).toEqual([0, 1, 2, 0, 2, 1]);
	});

	it('opens a closed list on an arrow, at the first or last option', () => {
		const closed = { ...list('/a', '/b'), open: false };
		expect(comboKey(closed, 'ArrowDown')).toEqual({ state: { items: ['/a', '/b'], open: true, active: 0 }, handled: true });
		expect(comboKey(closed, 'ArrowUp').state.active).toBe(1);
		expect(comboKey(closedCombo, 'ArrowDown').handled).toBe(false);
	});

	it('picks the highlighted option with Enter; without one, Enter submits the form', () => {
		const r = comboKey({ ...list('/a', '/b'), active: 1 }, 'Enter');
		expect(r).toEqual({ state: { items: ['/a', '/b'], open: false, active: -1 }, pick: '/b', handled: true });
		expect(comboKey(list('/a'), 'Enter')).toEqual({ state: list('/a'), handled: false });
	});

	it('closes with Escape, and lets Escape through when already closed', () => {
		expect(comboKey({ ...list('/a'), active: 0 }, 'Escape')).toEqual({ state: { items: ['/a'], open: false, active: -1 }, handled: true });
		expect(comboKey(closedCombo, 'Escape').handled).toBe(false);
		expect(comboKey(list('/a'), 'x').handled).toBe(false);
	});

	it('shows new suggestions unhighlighted, capped, and only when there are some', () => {
		expect(withItems(['/a'])).toEqual({ items: ['/a'], active: -1, open: true });
		expect(withItems([])).toEqual({ items: [], active: -1, open: false });
		expect(withItems(['/a'], false).open).toBe(false);
		expect(withItems(Array.from({ length: 80 }, (_, i) => `/d${i}`)).items).toHaveLength(MAX_SUGGESTIONS);
	});

	it('asks for children with a trailing slash, and only for absolute paths', () => {
		expect(childPrefix('/home/u')).toBe('/home/u/');
		expect(childPrefix('/')).toBe('/');
		expect(completable('/ho')).toBe(true);
		expect(completable('~/x')).toBe(false);
		expect(completable('')).toBe(false);
	});
});

describe('debounced completer', () => {
	beforeEach(() => vi.useFakeTimers());
	afterEach(() => vi.useRealTimers());

	function setup() {
		const calls: { prefix: string; signal: AbortSignal; resolve: (m: string[]) => void; reject: (e: unknown) => void }[] = [];
		const results: [string, string[]][] = [];
		const c = createCompleter(
			(prefix, signal) => new Promise<string[]>((resolve, reject) => calls.push({ prefix, signal, resolve, reject })),
			(prefix, matches) => results.push([prefix, matches]),
			150
		);
		return { c, calls, results };
	}

	it('asks once, 150 ms after the last keystroke', async () => {
		const { c, calls, results } = setup();
		c.schedule('/h');
		vi.advanceTimersByTime(100);
		c.schedule('/ho');
		vi.advanceTimersByTime(149);
		expect(calls).toHaveLength(0);
		vi.advanceTimersByTime(1);
		expect(calls.map((x) => x.prefix)).toEqual(['/ho']);
		calls[0]!.resolve(['/home']);
		await vi.runAllTimersAsync();
		expect(results).toEqual([['/ho', ['/home']]]);
	});

	it('drops the answer to an older request, and aborts it', async () => {
		const { c, calls, results } = setup();
		c.now('/h');
		c.now('/home/');
		expect(calls[0]!.signal.aborted).toBe(true);
		calls[1]!.resolve(['/home/u']);
		calls[0]!.resolve(['/home', '/hosts']);
		await vi.runAllTimersAsync();
		expect(results).toEqual([['/home/', ['/home/u']]]);
	});

	it('treats a typed key as making the pending answer stale', async () => {
		const { c, calls, results } = setup();
		c.now('/a');
		c.schedule('/ab');
		calls[0]!.resolve(['/abc']);
		await Promise.resolve();
		expect(results).toEqual([]);
	});

	it('reports an error as no matches, and a relative path without asking', async () => {
		const { c, calls, results } = setup();
		c.now('/x');
		calls[0]!.reject(new Error('500'));
		await vi.runAllTimersAsync();
		c.now('relative');
		expect(calls).toHaveLength(1);
		expect(results).toEqual([
			['/x', []],
			['relative', []]
		]);
	});

	it('cancel forgets everything', async () => {
		const { c, calls, results } = setup();
		c.schedule('/a');
		c.cancel();
		vi.advanceTimersByTime(500);
		expect(calls).toHaveLength(0);
		c.now('/b');
		c.cancel();
		calls[0]!.resolve(['/b']);
		await vi.runAllTimersAsync();
		expect(results).toEqual([]);
	});
});

describe('suggestion source', () => {
	const signal = new AbortController().signal;
	function tools(listing: Record<string, { path: string; is_dir: boolean }[]>) {
		const asked: string[] = [];
		return {
			asked,
			suggest: suggestDirs({
				complete: async (prefix) => (asked.push(`complete ${prefix}`), [`${prefix}*`]),
				list: async (dir) => {
					asked.push(`list ${dir}`);
					const entries = listing[dir];
					if (!entries) throw new Error('403 Outside the allowed file roots');
					return entries;
				}
			})
		};
	}

	it('completes a partial name, and lists the subdirectories of a path ending in /', async () => {
		const t = tools({ '/home/u': [{ path: '/home/u/a', is_dir: true }, { path: '/home/u/f.txt', is_dir: false }, { path: '/home/u/.git', is_dir: true }] });
		expect(await t.suggest('/home/u/pro', signal)).toEqual(['/home/u/pro*']);
		expect(await t.suggest('/home/u/', signal)).toEqual(['/home/u/a', '/home/u/.git']);
		expect(await t.suggest('/', signal)).toEqual(['/*']);
		expect(t.asked).toEqual(['complete /home/u/pro', 'list /home/u', 'complete /']);
	});

	it('falls back to the completion where the directory cannot be listed', async () => {
		const t = tools({});
		expect(await t.suggest('/home/', signal)).toEqual(['/home/*']);
		expect(t.asked).toEqual(['list /home', 'complete /home/']);
	});
});
