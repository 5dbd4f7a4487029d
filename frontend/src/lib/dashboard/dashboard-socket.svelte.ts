// The dashboard's WebSocket (`/ws/dashboard`): owns the socket, exposes its status as `$state`, hands parsed
// frames to the page, and reconnects with the chat socket's policy (connection/reconnect.ts: backoff after an
// unexpected close, throttled reconnects on visibilitychange/pageshow/online, a dead socket dropped on
// offline). Every connection starts with a snapshot, so a reconnect needs no resume logic.
//
// Not here: what frames mean (dashboard-state.ts).

import type { DashboardFrame } from '../api/protocol';
import { reportSocketFailure } from '../auth/signals';
import { backoffDelay, shouldLifecycleReconnect, shouldRetryAfterClose } from '../connection/reconnect';
import { dashboardSocketUrl, parseDashboardFrame } from './dashboard-state';

export type DashboardSocketStatus = 'idle' | 'connecting' | 'open' | 'closed';

export class DashboardSocket {
	/** Connection status, for the UI. */
	status = $state<DashboardSocketStatus>('idle');
	/** The current connection has delivered its snapshot: the page's data is live. */
	synced = $state(false);

	#ws: WebSocket | null = null;
	#timer: ReturnType<typeof setTimeout> | null = null;
	#attempt = 0;
	#stopped = true;
	#lastLifecycle: number | null = null;
	#cleanup: (() => void)[] = [];

	constructor(private readonly onframe: (frame: DashboardFrame) => void) {}

	get connected(): boolean {
		return this.status === 'open';
	}

	/** Opens the socket and starts following page lifecycle events. */
	start(): void {
		if (!this.#stopped) return;
		this.#stopped = false;
		const onLifecycle = () => this.#lifecycle();
		const onVisibility = () => document.visibilityState === 'visible' && this.#lifecycle();
		// A phone that lost its network can keep a dead socket open for minutes; drop it and reconnect on `online`.
		const onOffline = () => this.#drop();
		document.addEventListener('visibilitychange', onVisibility);
		window.addEventListener('pageshow', onLifecycle);
		window.addEventListener('online', onLifecycle);
		window.addEventListener('offline', onOffline);
		this.#cleanup.push(
			() => document.removeEventListener('visibilitychange', onVisibility),
			() => window.removeEventListener('pageshow', onLifecycle),
			() => window.removeEventListener('online', onLifecycle),
			() => window.removeEventListener('offline', onOffline)
		);
		this.#connect();
	}

	/** Closes the socket for good (leaving the page). */
	stop(): void {
		this.#stopped = true;
		this.#clearTimer();
		for (const f of this.#cleanup.splice(0)) f();
		this.#drop(1000);
	}

	#connect(): void {
		if (this.#stopped) return;
		let ws: WebSocket;
		try {
			ws = new WebSocket(dashboardSocketUrl(location));
		} catch {
			this.#scheduleRetry();
			return;
		}
		this.#ws = ws;
		this.status = 'connecting';
		this.synced = false;
		ws.onopen = () => {
			this.#attempt = 0;
			this.status = 'open';
		};
		ws.onmessage = (ev) => {
			const frame = parseDashboardFrame(ev.data);
			if (!frame) return;
			if (frame.type === 'piface_dashboard') this.synced = true;
			this.onframe(frame);
		};
		ws.onclose = () => {
			if (this.#ws !== ws) return;
			this.#ws = null;
			this.status = 'closed';
			this.synced = false;
			// Perhaps the upgrade was refused for want of a login (a browser cannot tell): the gate asks.
			reportSocketFailure();
			this.#scheduleRetry();
		};
	}

	#drop(code?: number): void {
		const ws = this.#ws;
		this.#ws = null;
		if (ws) {
			ws.onclose = ws.onerror = ws.onmessage = ws.onopen = null;
			try {
				ws.close(code);
			} catch {
				// Already closing.
			}
		}
		this.status = 'closed';
		this.synced = false;
	}

	#scheduleRetry(): void {
		const visible = document.visibilityState === 'visible';
		// The dashboard is always "live": only a hidden tab, being stopped or being offline hold a retry back.
		if (!shouldRetryAfterClose({ live: true, visible, closedByUs: this.#stopped })) return;
		if (!navigator.onLine) return; // `online` reconnects.
		this.#clearTimer();
		this.#attempt += 1;
		this.#timer = setTimeout(() => {
			this.#timer = null;
			this.#connect();
		}, backoffDelay(this.#attempt));
	}

	#lifecycle(): void {
		const now = Date.now();
		const go = shouldLifecycleReconnect({
			live: !this.#stopped,
			connected: this.status === 'open',
			hasSocket: this.#ws !== null,
			visible: document.visibilityState === 'visible',
			online: navigator.onLine,
			now,
			lastAttempt: this.#lastLifecycle
		});
		if (!go) return;
		this.#lastLifecycle = now;
		this.#clearTimer();
		this.#connect();
	}

	#clearTimer(): void {
		if (this.#timer) clearTimeout(this.#timer);
		this.#timer = null;
	}
}
