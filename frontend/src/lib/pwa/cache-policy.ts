// What the service worker (src/service-worker.ts) does with a request, decided without a browser: the app shell
// is cached, nothing else is. Hashed assets (`/_app/immutable/…`) come from the cache first (their names change
// with their content); a page load goes to the network and falls back to the cached shell, so the app opens
// (and says "reconnecting") while the coordinator is unreachable; the static files of the build (icons, the
// manifest, skin textures) go to the network and fall back to the cache. API calls, WebSockets, audio, raw
// files and anything from another origin are never touched: `pass`.

export type CachePolicy = 'pass' | 'cache-first' | 'shell' | 'network-first';

/** The cache of one build; the prefix finds the caches of older builds to delete on activation. */
export const CACHE_PREFIX = 'piface-shell-';

export function cacheName(version: string): string {
	return `${CACHE_PREFIX}${version}`;
}

/** The caches an activating worker of `version` deletes: ours from other builds, never anyone else's. */
export function staleCaches(names: readonly string[], version: string): string[] {
	return names.filter((n) => n.startsWith(CACHE_PREFIX) && n !== cacheName(version));
}

/** The key the shell page is cached under. */
export const SHELL_KEY = '/';

export interface RequestFacts {
	method: string;
	url: string;
	/** `request.mode`: `navigate` for a page load. */
	mode: string;
	/** The worker's own origin. */
	origin: string;
	/** Static files of the build (`$service-worker`'s `files`), as paths. */
	staticFiles: ReadonlySet<string>;
}

export function cachePolicy(r: RequestFacts): CachePolicy {
	if (r.method !== 'GET') return 'pass';
	let url: URL;
	try {
		url = new URL(r.url);
	} catch {
		return 'pass';
	}
	if (url.origin !== r.origin) return 'pass';
	const p = url.pathname;
	if (p === '/api' || p.startsWith('/api/') || p === '/ws' || p.startsWith('/ws/')) return 'pass';
	if (p.startsWith('/_app/immutable/')) return 'cache-first';
	if (r.mode === 'navigate') return 'shell';
	if (r.staticFiles.has(p)) return 'network-first';
	return 'pass';
}
