// Directory autocomplete of the working-directory field (ui.md §2 "DirBrowser", per agent in a cluster):
// the listbox's keyboard model (WAI-ARIA combobox with list autocomplete) as a pure function, and a
// debounced completer that drops stale answers, so a slow reply for `/ho` never replaces the list for `/home/`.
//
// Not here: markup and focus handling (DirInput.svelte), the HTTP call (api/client.ts `completeDir`).

/** Most suggestions shown at once; a huge directory is narrowed by typing. */
export const MAX_SUGGESTIONS = 50;
/** Quiet time after a keystroke before asking the server (the original's 150 ms). */
export const COMPLETE_DELAY_MS = 150;

export interface ComboState {
	items: string[];
	/** Index of the highlighted option, -1 when none. */
	active: number;
	open: boolean;
}

export const closedCombo: ComboState = Object.freeze({ items: [], active: -1, open: false }) as ComboState;

/** New suggestions arrived: shown (when there are any) with nothing highlighted yet. */
export function withItems(items: readonly string[], show = true): ComboState {
	const list = items.slice(0, MAX_SUGGESTIONS);
	return { items: list, active: -1, open: show && list.length > 0 };
}

export interface KeyResult {
	state: ComboState;
	/** The option chosen with Enter. */
	pick?: string;
	/** The key was used by the list: the caller prevents its default (no form submit on Enter). */
	handled: boolean;
}

/** What a key does to the list. Keys it does not use come back unhandled, for the input and the form. */
export function comboKey(state: ComboState, key: string): KeyResult {
	const n = state.items.length;
	switch (key) {
		case 'ArrowDown':
			if (!n) return { state, handled: false };
			if (!state.open) return { state: { ...state, open: true, active: 0 }, handled: true };
			return { state: { ...state, active: (state.active + 1) % n }, handled: true };
		case 'ArrowUp':
			if (!n) return { state, handled: false };
			if (!state.open) return { state: { ...state, open: true, active: n - 1 }, handled: true };
			return { state: { ...state, active: state.active <= 0 ? n - 1 : state.active - 1 }, handled: true };
		case 'Enter':
			if (state.open && state.active >= 0 && state.active < n) {
				return { state: { ...state, open: false, active: -1 }, pick: state.items[state.active], handled: true };
			}
			return { state, handled: false };
		case 'Escape':
			return state.open ? { state: { ...state, open: false, active: -1 }, handled: true } : { state, handled: false };
		default:
			return { state, handled: false };
	}
}

/** The prefix that lists a directory's children. */
export function childPrefix(dir: string): string {
	return dir.endsWith('/') ? dir : `${dir}/`;
}

/** Whether a value is worth asking about: completion works on absolute paths only. */
export function completable(prefix: string): boolean {
	return prefix.startsWith('/');
}

export interface Timers {
	set(fn: () => void, ms: number): ReturnType<typeof setTimeout>;
	clear(t: ReturnType<typeof setTimeout>): void;
}

export type CompleteFn = (prefix: string, signal: AbortSignal) => Promise<string[]>;

/** What the suggestions are made from: the server's completion and its directory listing. */
export interface DirTools {
	complete(prefix: string, signal: AbortSignal): Promise<string[]>;
	list(dir: string, signal: AbortSignal): Promise<{ path: string; is_dir: boolean }[]>;
}

/** Suggestions for a prefix. `/api/fs/complete` drops a trailing slash (`/home/u/` completes `u` in `/home`,
 * the original's rule), so a prefix ending in `/` (typed, or after picking a directory) lists that
 * directory's subdirectories instead; where it cannot be listed (outside the agent's file roots), the
 * completion answers. */
export function suggestDirs(tools: DirTools): CompleteFn {
	return async (prefix, signal) => {
		if (prefix.length > 1 && prefix.endsWith('/')) {
			try {
				const entries = await tools.list(prefix.replace(/\/+$/, '') || '/', signal);
				return entries.filter((e) => e.is_dir).map((e) => e.path);
			} catch (err) {
				if (signal.aborted) throw err;
			}
		}
		return tools.complete(prefix, signal);
	};
}

export interface Completer {
	/** Asks after the quiet time; a newer call replaces a pending one. */
	schedule(prefix: string): void;
	/** Asks at once (after picking a directory: its children). */
	now(prefix: string): void;
	/** Forgets pending and in-flight requests. */
	cancel(): void;
}

/** A debounced completer: only the answer to the latest request reaches `onresult`; errors count as no
 * matches. Timers are injectable for specs. */
export function createCompleter(
	complete: CompleteFn,
	onresult: (prefix: string, matches: string[]) => void,
	delay = COMPLETE_DELAY_MS,
	// Wrapped: a browser's `setTimeout` called as a method of another object throws "Illegal invocation".
	timers: Timers = { set: (fn, ms) => setTimeout(fn, ms), clear: (t) => clearTimeout(t) }
): Completer {
	let timer: ReturnType<typeof setTimeout> | null = null;
	let inflight: AbortController | null = null;
	let seq = 0;

	const stop = () => {
		if (timer !== null) timers.clear(timer);
		timer = null;
		inflight?.abort();
		inflight = null;
	};

	const run = (prefix: string) => {
		stop();
		const mine = ++seq;
		if (!completable(prefix)) {
			onresult(prefix, []);
			return;
		}
		const ctl = new AbortController();
		inflight = ctl;
		complete(prefix, ctl.signal).then(
			(matches) => mine === seq && onresult(prefix, matches),
			() => mine === seq && !ctl.signal.aborted && onresult(prefix, [])
		);
	};

	return {
		schedule(prefix) {
			stop();
			seq++; // An answer still on its way is stale from now on.
			timer = timers.set(() => {
				timer = null;
				run(prefix);
			}, delay);
		},
		now: run,
		cancel() {
			stop();
			seq++;
		}
	};
}
