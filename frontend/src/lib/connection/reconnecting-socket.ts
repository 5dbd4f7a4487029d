// The one reconnecting WebSocket of the UI, under the chat, dashboard and terminal sockets: it owns the socket,
// its status and the retry counter, the backoff after an unexpected close and the throttled reconnects on page
// lifecycle events (the policy of reconnect.ts), the drop of a dead socket on `offline`, the report of a failed
// socket to the login gate (auth/signals.ts), close codes after which it does not reconnect until asked, and
// stop with its cleanup. A wrapper only says which URL to open, what to do on open, what a message means and
// which close codes are final.
//
// Plain TypeScript with one change callback rather than a `.svelte.ts` class with `$state`: the terminal's
// socket is not Svelte state (its view keeps the status it is told), and the two that are (`SessionSocket`,
// `DashboardSocket`) each show their own status shape, so each copies what it shows into its own `$state` in
// the callback. The browser pieces (WebSocket, timers, visibility, lifecycle events) come in one `SocketEnv`,
// so specs drive the whole policy with fakes.
//
// Not here: what frames mean, what a wrapper sends, or what its view says about a close.

import { reportSocketFailure } from '../auth/signals';
import { backoffDelay, shouldLifecycleReconnect, shouldRetryAfterClose } from './reconnect';

/** The minimal WebSocket surface used here. */
export interface SocketLike {
	binaryType: string;
	readyState: number;
	onopen: ((ev: unknown) => void) | null;
	onmessage: ((ev: { data: unknown }) => void) | null;
	onclose: ((ev: { code: number; reason: string }) => void) | null;
	onerror: ((ev: unknown) => void) | null;
	send(data: string | ArrayBufferLike | ArrayBufferView): void;
	close(code?: number): void;
}

/** The page events that matter to a socket. */
export interface LifecycleListeners {
	/** The page may have come back: visible again, shown from the back/forward cache, or online. */
	resume(): void;
	/** The network is gone. */
	offline(): void;
}

/** What the socket needs from the browser. */
export interface SocketEnv {
	connect(url: string): SocketLike;
	setTimeout(fn: () => void, ms: number): unknown;
	clearTimeout(t: unknown): void;
	visible(): boolean;
	online(): boolean;
	now(): number;
	/** Starts listening to the page's lifecycle; returns what stops it. */
	listen(on: LifecycleListeners): () => void;
}

/** `WebSocket.OPEN`, which Node has no global for. */
const OPEN = 1;

export function browserEnv(): SocketEnv {
	return {
		connect: (url) => new WebSocket(url) as unknown as SocketLike,
		setTimeout: (fn, ms) => setTimeout(fn, ms),
		clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
		visible: () => document.visibilityState === 'visible',
		online: () => navigator.onLine,
		now: () => Date.now(),
		listen(on) {
			const resume = () => on.resume();
			const visibility = () => {
				if (document.visibilityState === 'visible') on.resume();
			};
			const offline = () => on.offline();
			document.addEventListener('visibilitychange', visibility);
			window.addEventListener('pageshow', resume);
			window.addEventListener('online', resume);
			window.addEventListener('offline', offline);
			return () => {
				document.removeEventListener('visibilitychange', visibility);
				window.removeEventListener('pageshow', resume);
				window.removeEventListener('online', resume);
				window.removeEventListener('offline', offline);
			};
		}
	};
}

/**
 * - `idle`: not started.
 * - `connecting`: a socket is opening (`attempt` > 0 when it is a backoff retry).
 * - `open`.
 * - `reconnecting`: closed without being asked to; it connects again by itself, after the backoff or, for a
 *   hidden or offline page, on the next lifecycle event.
 * - `ended`: the server closed with a final code; only `reconnectNow` connects again.
 * - `stopped`: closed for good by `stop`.
 */
export type ReconnectingStatus = 'idle' | 'connecting' | 'open' | 'reconnecting' | 'ended' | 'stopped';

/** The server's close, for `reconnecting` and `ended` (absent when the socket was dropped on `offline` or could
 * not be created). */
export interface ServerClose {
	code: number;
	reason: string;
}

/** What a wrapper says about its socket. */
export interface SocketSpec {
	/** The URL of each new connection. */
	url(): string;
	/** `arraybuffer` for binary frames (the default is the browser's `blob`). */
	binaryType?: 'arraybuffer';
	/** A connection opened (before the status says so and before its first message): send what every
	 * connection starts with. */
	open?(send: (data: string | ArrayBufferLike | ArrayBufferView) => void): void;
	/** A message arrived (`data` as the browser gives it). */
	message(data: unknown): void;
	/** Whether a server close with this code means "do not reconnect" (e.g. 4004, session gone). */
	isFinal?(code: number): boolean;
	/** Called at every transition, also to the same status (a second close, with a new reason). */
	change?(status: ReconnectingStatus, close?: ServerClose): void;
}

export class ReconnectingSocket {
	#status: ReconnectingStatus = 'idle';
	#attempt = 0;
	#ws: SocketLike | null = null;
	#timer: unknown = null;
	/** Not started yet, or stopped: nothing connects. */
	#stopped = true;
	/** False after a final close, or while the owner says the thing behind the socket is gone. */
	#live = true;
	/** When the last lifecycle-triggered connect was made, for the throttle. */
	#lastLifecycle: number | null = null;
	#unlisten: (() => void) | null = null;

	constructor(
		private readonly spec: SocketSpec,
		private readonly env: SocketEnv = browserEnv()
	) {}

	get status(): ReconnectingStatus {
		return this.#status;
	}

	/** Retry number of the pending or running reconnect (0 after an open). */
	get attempt(): number {
		return this.#attempt;
	}

	get connected(): boolean {
		return this.#ws?.readyState === OPEN;
	}

	/** Whether it may connect; false after a final close. Setting false also cancels a pending retry. */
	get live(): boolean {
		return this.#live;
	}

	set live(v: boolean) {
		this.#live = v;
		if (!v) this.#clearTimer();
	}

	/** Opens the socket and starts following the page's lifecycle; a second call does nothing. */
	start(): void {
		if (!this.#stopped) return;
		this.#stopped = false;
		this.#unlisten = this.env.listen({
			resume: () => this.lifecycle(),
			// A phone that lost its network can keep a dead socket open for minutes: drop it, and reconnect on
			// `online`.
			offline: () => {
				if (!this.#ws) return;
				this.#detach();
				this.#set('reconnecting');
			}
		});
		this.#connect();
	}

	/** Closes the socket for good and stops listening to the page. */
	stop(): void {
		this.#stopped = true;
		this.#clearTimer();
		this.#unlisten?.();
		this.#unlisten = null;
		this.#detach(1000);
		this.#set('stopped');
	}

	/** Connects now unless stopped or a socket is open or opening: the owner knows the server changed its mind
	 * (a resumed session, a trusted workspace), so this also undoes a final close. */
	reconnectNow(): void {
		if (this.#stopped || this.#ws) return;
		this.#live = true;
		this.#clearTimer();
		this.#connect();
	}

	/** The page may have come back (visible, shown, online): connect if nothing is open, at most once per
	 * throttle period. */
	lifecycle(): void {
		const now = this.env.now();
		const go = shouldLifecycleReconnect({
			live: this.#live && !this.#stopped,
			connected: this.connected,
			hasSocket: this.#ws !== null,
			visible: this.env.visible(),
			online: this.env.online(),
			now,
			lastAttempt: this.#lastLifecycle
		});
		if (!go) return;
		this.#lastLifecycle = now;
		this.#clearTimer();
		this.#connect();
	}

	/** Sends on the open socket; false when there is none (nothing is queued). */
	send(data: string | ArrayBufferLike | ArrayBufferView): boolean {
		const ws = this.#ws;
		if (!ws || ws.readyState !== OPEN) return false;
		ws.send(data);
		return true;
	}

	#connect(): void {
		if (this.#stopped || !this.#live) return;
		let ws: SocketLike;
		try {
			ws = this.env.connect(this.spec.url());
		} catch {
			// A malformed URL or a browser refusing more sockets: treated as a close.
			this.#scheduleRetry();
			this.#set('reconnecting');
			return;
		}
		if (this.spec.binaryType) ws.binaryType = this.spec.binaryType;
		this.#ws = ws;
		this.#set('connecting');
		ws.onopen = () => {
			this.#attempt = 0;
			this.spec.open?.((data) => ws.send(data));
			this.#set('open');
		};
		ws.onmessage = (ev) => this.spec.message(ev.data);
		ws.onclose = (ev) => {
			if (this.#ws !== ws) return;
			this.#ws = null;
			const close = { code: ev.code, reason: ev.reason };
			if (this.spec.isFinal?.(ev.code)) {
				this.#live = false;
				this.#set('ended', close);
				return;
			}
			// Perhaps the upgrade was refused for want of a login (a browser cannot tell): the gate asks.
			reportSocketFailure();
			this.#scheduleRetry();
			this.#set('reconnecting', close);
		};
	}

	/** Forgets the current socket without hearing its close, and closes it. */
	#detach(code?: number): void {
		const ws = this.#ws;
		this.#ws = null;
		if (!ws) return;
		ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
		try {
			ws.close(code);
		} catch {
			// Already closing.
		}
	}

	#scheduleRetry(): void {
		// A hidden tab or a lost network waits for a lifecycle event instead.
		if (!shouldRetryAfterClose({ live: this.#live, visible: this.env.visible(), closedByUs: this.#stopped })) return;
		if (!this.env.online()) return;
		this.#clearTimer();
		this.#attempt += 1;
		this.#timer = this.env.setTimeout(() => {
			this.#timer = null;
			this.#connect();
		}, backoffDelay(this.#attempt));
	}

	#set(status: ReconnectingStatus, close?: ServerClose): void {
		this.#status = status;
		this.spec.change?.(status, close);
	}

	#clearTimer(): void {
		if (this.#timer !== null) this.env.clearTimeout(this.#timer);
		this.#timer = null;
	}
}
