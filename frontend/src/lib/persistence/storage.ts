// Browser storage with the contract's fallbacks (ui.md §1 "Browser storage keys"): preferences are read from
// localStorage then sessionStorage and written to the first that accepts them; session snapshots and view
// state are written to both. A storage that throws (private mode, quota, disabled) is skipped, never fatal.
// The storages are passed in, so specs run without a browser.

/** The subset of the Web Storage API we use. */
export interface KV {
	getItem(key: string): string | null;
	setItem(key: string, value: string): void;
	removeItem(key: string): void;
}

/** The page's storages, each `null` when the browser refuses access. */
export interface Storages {
	local: KV | null;
	session: KV | null;
}

/** The real storages; accessing `localStorage` itself can throw (e.g. with cookies blocked). */
export function browserStorages(): Storages {
	const get = (name: 'localStorage' | 'sessionStorage'): KV | null => {
		try {
			return typeof window === 'undefined' ? null : window[name];
		} catch {
			return null;
		}
	};
	return { local: get('localStorage'), session: get('sessionStorage') };
}

function read(kv: KV | null, key: string): string | null {
	try {
		return kv?.getItem(key) ?? null;
	} catch {
		return null;
	}
}

function write(kv: KV | null, key: string, value: string): boolean {
	if (!kv) return false;
	try {
		kv.setItem(key, value);
		return true;
	} catch {
		return false;
	}
}

/** Reads `key` from local, then session storage. */
export function readPreference(s: Storages, key: string): string | null {
	return read(s.local, key) ?? read(s.session, key);
}

/** Writes `key` to the first storage that accepts it; false when none does. */
export function writePreference(s: Storages, key: string, value: string): boolean {
	return write(s.local, key, value) || write(s.session, key, value);
}

/** Writes to both storages; true when at least one accepted. */
export function writeBoth(s: Storages, key: string, value: string): boolean {
	const a = write(s.session, key, value);
	const b = write(s.local, key, value);
	return a || b;
}

/** Reads `key` preferring sessionStorage (this tab), then localStorage. */
export function readBoth(s: Storages, key: string): string | null {
	return read(s.session, key) ?? read(s.local, key);
}

export function remove(s: Storages, key: string, where: 'local' | 'session' | 'both' = 'both'): void {
	for (const kv of where === 'both' ? [s.local, s.session] : [s[where]]) {
		try {
			kv?.removeItem(key);
		} catch {
			// Nothing to do: a storage we cannot write holds nothing of ours.
		}
	}
}

/** Parses JSON, or null. */
export function parseJson(text: string | null): unknown {
	if (text === null) return null;
	try {
		return JSON.parse(text);
	} catch {
		return null;
	}
}

/** A Map-backed storage for specs (and as a stand-in when the browser has none). */
export class MemoryStorage implements KV {
	readonly map = new Map<string, string>();
	/** When set, `setItem` throws (a full or disabled storage). */
	failWrites = false;
	getItem(key: string): string | null {
		return this.map.get(key) ?? null;
	}
	setItem(key: string, value: string): void {
		if (this.failWrites) throw new Error('QuotaExceededError');
		this.map.set(key, value);
	}
	removeItem(key: string): void {
		this.map.delete(key);
	}
}
