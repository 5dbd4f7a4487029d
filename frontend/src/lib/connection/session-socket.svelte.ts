// The chat WebSocket of one session, in compact mode (see `socketUrl`): owns the socket, exposes its status as
// `$state`, sends typed messages, and reconnects (backoff after an unexpected close, throttled reconnects on
// visibilitychange/pageshow/online, per `reconnect.ts`). Every open asks for the history (`piface_get_history`)
// and for pi's state, so a reconnect resumes from a full replay; the reducer decides what the feed shows.
//
// Not here: what frames mean (chat/reducer.ts) and what the page does with them.

import type { ClientMessage, ServerFrame } from '../api/protocol';
import { reportSocketFailure } from '../auth/signals';
import { backoffDelay, shouldLifecycleReconnect, shouldRetryAfterClose, socketUrl } from './reconnect';

export type SocketStatus = 'idle' | 'connecting' | 'open' | 'closed';

export interface SocketHandlers {
	/** A frame arrived (already parsed). */
	frame(frame: ServerFrame): void;
	/** The socket opened (before the first frame of this connection). */
	open?(): void;
	/** The server closed with 4004: the session is not live any more. */
	gone?(): void;
	/** Any other close the socket did not ask for (it reconnects by itself): the code and the server's reason. */
	closed?(code: number, reason: string): void;
}

/** Close code of the server for an unknown or closed session. */
const SESSION_GONE = 4004;

export class SessionSocket {
	/** Connection status, for the UI. */
	status = $state<SocketStatus>('idle');
	/** Retry number of the pending reconnect (0 when none). */
	attempt = $state(0);

	#ws: WebSocket | null = null;
	#timer: ReturnType<typeof setTimeout> | null = null;
	#live = true;
	#stopped = false;
	#lastLifecycle: number | null = null;
	#cleanup: (() => void)[] = [];

	constructor(
		readonly sessionId: string,
		private readonly handlers: SocketHandlers
	) {}

	/** Whether the session is live; a closed session is never (re)connected. */
	set live(v: boolean) {
		this.#live = v;
		if (!v) this.#clearTimer();
	}

	get connected(): boolean {
		return this.status === 'open';
	}

	/** Opens the socket and starts listening to page lifecycle events. */
	start(): void {
		this.#stopped = false;
		const onLifecycle = () => this.#lifecycle();
		const onOffline = () => {
			// A phone that lost its network keeps a dead socket open for a long time; drop it now and
			// reconnect on `online`.
			if (this.#ws) this.#drop();
		};
		const onVisibility = () => {
			if (document.visibilityState === 'visible') this.#lifecycle();
		};
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
		const ws = this.#ws;
		this.#ws = null;
		if (ws) {
			ws.onclose = ws.onerror = ws.onmessage = ws.onopen = null;
			ws.close(1000);
		}
		this.status = 'closed';
	}

	/** Reconnects now if the session is live and no socket is open (e.g. after a resume). */
	reconnectNow(): void {
		if (this.#stopped || !this.#live || this.#ws) return;
		this.#clearTimer();
		this.#connect();
	}

	/** Sends a message; false when the socket is not open (nothing is queued). */
	send(msg: ClientMessage): boolean {
		const ws = this.#ws;
		if (!ws || ws.readyState !== WebSocket.OPEN) return false;
		ws.send(JSON.stringify(msg));
		return true;
	}

	#connect(): void {
		if (this.#stopped || !this.#live) return;
		let ws: WebSocket;
		try {
			ws = new WebSocket(socketUrl(location, this.sessionId));
		} catch {
			this.#scheduleRetry();
			return;
		}
		this.#ws = ws;
		this.status = 'connecting';
		ws.onopen = () => {
			this.attempt = 0;
			this.status = 'open';
			this.handlers.open?.();
			ws.send(JSON.stringify({ type: 'piface_get_history' }));
			ws.send(JSON.stringify({ type: 'get_state' }));
		};
		ws.onmessage = (ev) => {
			if (typeof ev.data !== 'string') return;
			let frame: ServerFrame;
			try {
				frame = JSON.parse(ev.data) as ServerFrame;
			} catch {
				return;
			}
			if (frame && typeof frame === 'object' && typeof frame.type === 'string') this.handlers.frame(frame);
		};
		ws.onclose = (ev) => {
			if (this.#ws !== ws) return;
			this.#ws = null;
			this.status = 'closed';
			if (ev.code === SESSION_GONE) {
				this.#live = false;
				this.handlers.gone?.();
				return;
			}
			this.handlers.closed?.(ev.code, ev.reason);
			// Perhaps the upgrade was refused for want of a login (a browser cannot tell): the gate asks.
			reportSocketFailure();
			this.#scheduleRetry();
		};
	}

	/** Closes the current socket as if the network dropped it. */
	#drop(): void {
		const ws = this.#ws;
		this.#ws = null;
		if (ws) {
			ws.onclose = ws.onerror = ws.onmessage = ws.onopen = null;
			try {
				ws.close();
			} catch {
				// Already closing.
			}
		}
		this.status = 'closed';
	}

	#scheduleRetry(): void {
		const visible = document.visibilityState === 'visible';
		if (!shouldRetryAfterClose({ live: this.#live, visible, closedByUs: this.#stopped })) return;
		if (!navigator.onLine) return; // `online` will reconnect.
		this.#clearTimer();
		this.attempt += 1;
		this.#timer = setTimeout(() => {
			this.#timer = null;
			this.#connect();
		}, backoffDelay(this.attempt));
	}

	#lifecycle(): void {
		const now = Date.now();
		const go = shouldLifecycleReconnect({
			live: this.#live && !this.#stopped,
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
