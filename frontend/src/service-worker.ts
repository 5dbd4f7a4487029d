/// <reference types="@sveltejs/kit" />
/// <reference no-default-lib="true"/>
/// <reference lib="esnext" />
/// <reference lib="webworker" />
// The service worker (served as /service-worker.js, registered by SvelteKit): it caches the app shell, i.e. the
// hashed assets of this build plus the shell page, so the installed app opens at once and, while the
// coordinator is unreachable, shows its own "reconnecting" state instead of the browser's error page. Which
// request gets what is `cachePolicy` (lib/pwa/cache-policy.ts): API calls and WebSockets are never cached.
// Each build has its own cache (`piface-shell-<version>`); a new worker takes over at once and deletes the
// older builds' caches. Web Push: a `push` shows the coordinator's notification (lib/push/notification.ts reads
// it), and tapping it focuses a window of the session (or any of ours, which goes there) or opens one.
import { build, files, version } from '$service-worker';
import { notificationOptions, notificationTarget, parsePushPayload, pickWindow } from './lib/push/notification';
import { cacheName, cachePolicy, SHELL_KEY, staleCaches } from './lib/pwa/cache-policy';

const sw = self as unknown as ServiceWorkerGlobalScope;
const CACHE = cacheName(version);
const staticFiles = new Set(files);

sw.addEventListener('install', (event) => {
	event.waitUntil(
		(async () => {
			const cache = await caches.open(CACHE);
			// The shell is what `/` answers (every page path answers the same page).
			await cache.addAll([SHELL_KEY, ...build, ...files]);
			await sw.skipWaiting();
		})()
	);
});

sw.addEventListener('activate', (event) => {
	event.waitUntil(
		(async () => {
			for (const name of staleCaches(await caches.keys(), version)) await caches.delete(name);
			await sw.clients.claim();
		})()
	);
});

sw.addEventListener('fetch', (event) => {
	const req = event.request;
	const policy = cachePolicy({ method: req.method, url: req.url, mode: req.mode, origin: sw.location.origin, staticFiles });
	if (policy === 'pass') return;
	event.respondWith(respond(req, policy));
});

async function respond(req: Request, policy: 'cache-first' | 'shell' | 'network-first'): Promise<Response> {
	const cache = await caches.open(CACHE);
	if (policy === 'cache-first') {
		const hit = await cache.match(req);
		if (hit) return hit;
		const res = await fetch(req);
		if (res.ok) await cache.put(req, res.clone());
		return res;
	}
	try {
		return await fetch(req);
	} catch (err) {
		// The coordinator is unreachable: the cached shell (for a page) or file, else the network's error.
		const hit = await cache.match(policy === 'shell' ? SHELL_KEY : req);
		if (hit) return hit;
		throw err;
	}
}

sw.addEventListener('push', (event) => {
	const n = parsePushPayload(event.data?.text());
	// Browsers require a notification for every push a page asked for (`userVisibleOnly`); one that is not ours
	// still shows, plainly.
	const { title, options } = n ? notificationOptions(n) : { title: 'piface', options: { body: 'Something happened in piface.' } };
	event.waitUntil(sw.registration.showNotification(title, options));
});

sw.addEventListener('notificationclick', (event) => {
	event.notification.close();
	const target = notificationTarget(event.notification.data);
	event.waitUntil(
		(async () => {
			const windows = await sw.clients.matchAll({ type: 'window', includeUncontrolled: true });
			const i = pickWindow(
				windows.map((w) => ({ url: w.url, focused: w.focused })),
				target,
				sw.location.origin
			);
			const url = new URL(target, sw.location.origin).href;
			if (i < 0) {
				await sw.clients.openWindow(url);
				return;
			}
			const w = windows[i]!;
			const focused = await w.focus();
			if (new URL(focused.url).pathname !== target) await focused.navigate(url);
		})()
	);
});
