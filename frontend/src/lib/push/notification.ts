// Web Push, the pure parts shared by the page and the service worker: reading a push's payload (the coordinator's
// `piface_notification`, see api/protocol.ts), what `showNotification` gets for it, which open window a tap goes
// to, and the shapes the subscription API takes. No browser API is touched here.

import type { NotificationKind, PushNotification } from '../api/protocol';

const KINDS: readonly NotificationKind[] = ['turn_end', 'attention', 'exited', 'agent_down', 'test'];

/** A push's payload as the service worker gets it (`PushEvent.data.text()`), or null when it is not ours. */
export function parsePushPayload(text: string | null | undefined): PushNotification | null {
	if (!text) return null;
	let v: unknown;
	try {
		v = JSON.parse(text);
	} catch {
		return null;
	}
	if (!v || typeof v !== 'object') return null;
	const o = v as Record<string, unknown>;
	const str = (k: string) => (typeof o[k] === 'string' ? (o[k] as string) : null);
	const kind = str('kind');
	if (o.type !== 'piface_notification' || !kind || !(KINDS as readonly string[]).includes(kind)) return null;
	const title = str('title');
	if (!title) return null;
	return {
		type: 'piface_notification',
		kind: kind as NotificationKind,
		title,
		body: str('body') ?? '',
		url: safePath(str('url')),
		tag: str('tag') ?? `piface-${kind}`,
		session_id: str('session_id')
	};
}

/** Only a path on this origin may be opened by a tap (`/` otherwise). */
export function safePath(url: string | null): string {
	return url && url.startsWith('/') && !url.startsWith('//') && !url.includes('\\') ? url : '/';
}

/** What `registration.showNotification(title, options)` gets. `data.url` is what a tap opens. */
export function notificationOptions(n: PushNotification): { title: string; options: NotificationOptions & { renotify?: boolean } } {
	return {
		title: n.title,
		options: {
			body: n.body,
			tag: n.tag,
			// A newer notification with the same tag (the session's next turn) alerts again.
			renotify: true,
			// A dialog waiting for an answer stays until it is seen.
			requireInteraction: n.kind === 'attention',
			icon: '/icons/icon-192.png',
			badge: '/icons/icon-192.png',
			data: { url: n.url, session_id: n.session_id, kind: n.kind }
		}
	};
}

/** The path a tapped notification opens (from its `data`). */
export function notificationTarget(data: unknown): string {
	const url = data && typeof data === 'object' ? (data as { url?: unknown }).url : null;
	return safePath(typeof url === 'string' ? url : null);
}

/** A window the service worker can see, reduced to what the choice needs. */
export interface WindowInfo {
	url: string;
	focused: boolean;
}

/** Which open window a tap should use, by index (-1: open a new one): one already showing the target, else a
 * focused one, else any; all of this origin. */
export function pickWindow(windows: readonly WindowInfo[], target: string, origin: string): number {
	const path = (u: string) => {
		try {
			const url = new URL(u);
			return url.origin === origin ? url.pathname : null;
		} catch {
			return null;
		}
	};
	const ours = windows.map((w, i) => ({ ...w, i, path: path(w.url) })).filter((w) => w.path !== null);
	const exact = ours.find((w) => w.path === target);
	if (exact) return exact.i;
	return (ours.find((w) => w.focused) ?? ours[0])?.i ?? -1;
}

/** The VAPID public key (base64url, as `GET /api/push/key` gives it) as `applicationServerKey` takes it. */
export function applicationServerKey(base64url: string): Uint8Array<ArrayBuffer> {
	const b64 = base64url.replace(/-/g, '+').replace(/_/g, '/');
	const bin = atob(b64 + '='.repeat((4 - (b64.length % 4)) % 4));
	const out = new Uint8Array(new ArrayBuffer(bin.length));
	for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
	return out;
}

/** What `POST /api/push/subscriptions` takes, from `PushSubscription.toJSON()`; null when the browser gave no
 * keys (it cannot receive an encrypted payload then). */
export function subscriptionBody(json: PushSubscriptionJSON): { endpoint: string; keys: { p256dh: string; auth: string } } | null {
	const p256dh = json.keys?.p256dh;
	const auth = json.keys?.auth;
	if (!json.endpoint || !p256dh || !auth) return null;
	return { endpoint: json.endpoint, keys: { p256dh, auth } };
}

/** A browser's subscription as the API shows it. */
export interface PushSubscriptionInfo {
	id: string;
	endpoint: string;
	created_at: string;
	muted: boolean;
	muted_sessions: string[];
}
