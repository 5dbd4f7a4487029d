// This browser's Web Push state, shared by the dashboard's Notifications control and each session's "Notify"
// toggle: whether the browser can take pushes here, the permission, and the coordinator's record of this
// browser's subscription (its mutes). Turning notifications on asks for the permission, subscribes through the
// service worker's `pushManager` with the coordinator's VAPID key and registers the subscription; on every start
// an existing subscription is registered again (the coordinator renews its keys and keeps its mutes). The
// browser APIs come in through `PushDeps`, so the flow runs in the specs against fakes.

import { api, ApiError } from '../api/client';
import { applicationServerKey, subscriptionBody, type PushSubscriptionInfo } from './notification';

/** Why this browser cannot take pushes here, or 'ok'. */
export type PushSupport = 'checking' | 'ok' | 'insecure' | 'unsupported';

/** What the state needs from the browser and the coordinator. */
export interface PushDeps {
	/** 'insecure' without a secure context (plain HTTP to a name other than localhost), 'unsupported' without a
	 * service worker, `PushManager` or `Notification` (iPhone: only once added to the home screen). */
	support(): PushSupport;
	permission(): NotificationPermission;
	requestPermission(): Promise<NotificationPermission>;
	/** The service worker's `pushManager`, once the worker is ready. */
	pushManager(): Promise<PushManager>;
	key(): Promise<string>;
	register(body: { endpoint: string; keys: { p256dh: string; auth: string } }): Promise<PushSubscriptionInfo>;
	change(id: string, body: { muted?: boolean; sessions?: Record<string, boolean> }): Promise<PushSubscriptionInfo>;
	remove(id: string): Promise<void>;
	test(id: string): Promise<number>;
}

export function browserPushDeps(): PushDeps {
	return {
		support() {
			if (typeof window === 'undefined') return 'unsupported';
			if (!window.isSecureContext) return 'insecure';
			if (!('serviceWorker' in navigator) || !('PushManager' in window) || !('Notification' in window)) return 'unsupported';
			return 'ok';
		},
		permission: () => Notification.permission,
		requestPermission: () => Notification.requestPermission(),
		pushManager: async () => (await navigator.serviceWorker.ready).pushManager,
		key: api.pushKey,
		register: api.pushSubscribe,
		change: api.pushChange,
		remove: api.pushRemove,
		test: api.pushTest
	};
}

/** A message for an error thrown by the browser or the API. */
function message(err: unknown): string {
	return err instanceof Error ? err.message : String(err);
}

export class PushState {
	support = $state<PushSupport>('checking');
	permission = $state<NotificationPermission>('default');
	/** This browser's subscription as the coordinator has it; null when notifications are off here. */
	info = $state<PushSubscriptionInfo | null>(null);
	busy = $state(false);
	error = $state<string | null>(null);
	#started: Promise<void> | null = null;

	constructor(private readonly deps: PushDeps = browserPushDeps()) {}

	/** Whether pushes reach this browser (subscribed and not muted as a whole). */
	get on(): boolean {
		return this.info !== null && !this.info.muted;
	}

	/** Whether this browser hears about session `id`. */
	notifies(id: string): boolean {
		return this.on && !this.info!.muted_sessions.includes(id);
	}

	/** Reads the state once (later calls wait for the first): an existing subscription is registered again. */
	start(): Promise<void> {
		this.#started ??= this.#load();
		return this.#started;
	}

	async #load(): Promise<void> {
		this.support = this.deps.support();
		if (this.support !== 'ok') return;
		this.permission = this.deps.permission();
		if (this.permission !== 'granted') return;
		try {
			const existing = await (await this.deps.pushManager()).getSubscription();
			const body = existing && subscriptionBody(existing.toJSON());
			if (body) this.info = await this.deps.register(body);
		} catch (err) {
			this.error = `Could not read this browser's notifications: ${message(err)}`;
		}
	}

	/** Turns notifications on in this browser: permission, subscription, registration. */
	async enable(): Promise<void> {
		await this.#run(async () => {
			this.permission = await this.deps.requestPermission();
			if (this.permission !== 'granted') {
				throw new Error(
					this.permission === 'denied'
						? "Notifications are blocked for this site; allow them in the browser's site settings"
						: 'Notifications were not allowed'
				);
			}
			const manager = await this.deps.pushManager();
			let sub = await manager.getSubscription();
			if (!sub) sub = await manager.subscribe({ userVisibleOnly: true, applicationServerKey: applicationServerKey(await this.deps.key()) });
			const body = subscriptionBody(sub.toJSON());
			if (!body) throw new Error('The browser gave a subscription without encryption keys');
			this.info = await this.deps.register(body);
		});
	}

	/** Turns notifications off in this browser (the coordinator forgets it, the browser unsubscribes). */
	async disable(): Promise<void> {
		await this.#run(async () => {
			// Already forgotten (its push service said it was gone): still unsubscribe here.
			if (this.info) await this.deps.remove(this.info.id).catch((e) => (e instanceof ApiError && e.status === 404 ? undefined : Promise.reject(e)));
			this.info = null;
			const sub = await (await this.deps.pushManager()).getSubscription();
			await sub?.unsubscribe();
		});
	}

	/** Mutes (or unmutes) every notification to this browser. */
	async setMuted(muted: boolean): Promise<void> {
		const info = this.info;
		if (!info) return;
		await this.#run(async () => {
			this.info = await this.deps.change(info.id, { muted });
		});
	}

	/** Mutes (or unmutes) session `id` in this browser. */
	async setSessionMuted(id: string, muted: boolean): Promise<void> {
		const info = this.info;
		if (!info) return;
		await this.#run(async () => {
			this.info = await this.deps.change(info.id, { sessions: { [id]: muted } });
		});
	}

	/** Asks the coordinator for a test notification now; the push service's status. */
	async test(): Promise<number | null> {
		const info = this.info;
		if (!info) return null;
		let status: number | null = null;
		await this.#run(async () => {
			status = await this.deps.test(info.id);
		});
		return status;
	}

	async #run(step: () => Promise<void>): Promise<void> {
		this.busy = true;
		this.error = null;
		try {
			await step();
		} catch (err) {
			this.error = message(err);
		} finally {
			this.busy = false;
		}
	}
}

/** The page's one instance. */
export const push = new PushState();
