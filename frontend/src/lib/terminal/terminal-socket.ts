// The terminal's WebSocket: binary PTY output in, keystrokes (binary) and resizes (text JSON) out, and the
// chat socket's reconnect policy (connection/reconnect.ts: backoff after an unexpected close, throttled
// reconnects on visibility/online). The browser pieces (WebSocket, timers, visibility) are injected, so the
// specs drive it with fakes. Not here: xterm.js, which the view owns.

import { reportSocketFailure } from '../auth/signals';
import { closeNotice } from '../connection/limits';
import { backoffDelay, shouldLifecycleReconnect, shouldRetryAfterClose } from '../connection/reconnect';
import { closeMeaning, resizeMessage } from './protocol';

export type TerminalStatus = 'connecting' | 'open' | 'reconnecting' | 'gone' | 'failed' | 'untrusted' | 'stopped';

export interface TerminalHandlers {
	/** PTY output (the scrollback first after each open). */
	data(bytes: Uint8Array): void;
	/** A connection opened: the view clears the screen, since the server replays its scrollback. */
	open(): void;
	status(s: TerminalStatus, detail?: string): void;
}

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

export interface TerminalEnv {
	connect(url: string): SocketLike;
	setTimeout(fn: () => void, ms: number): unknown;
	clearTimeout(t: unknown): void;
	visible(): boolean;
	online(): boolean;
	now(): number;
}

const OPEN = 1;

export function browserEnv(): TerminalEnv {
	return {
		connect: (url) => new WebSocket(url) as unknown as SocketLike,
		setTimeout: (fn, ms) => setTimeout(fn, ms),
		clearTimeout: (t) => clearTimeout(t as ReturnType<typeof setTimeout>),
		visible: () => document.visibilityState === 'visible',
		online: () => navigator.onLine,
		now: () => Date.now()
	};
}

export class TerminalSocket {
	#ws: SocketLike | null = null;
	#timer: unknown = null;
	#attempt = 0;
	#stopped = false;
	/** False once the server said the session is not live; `reconnectNow` clears it (after a resume). */
	#live = true;
	#lastLifecycle: number | null = null;
	#lastSize: string | null = null;
	readonly #encoder = new TextEncoder();

	constructor(
		readonly url: string,
		private readonly handlers: TerminalHandlers,
		private readonly env: TerminalEnv = browserEnv()
	) {}

	get connected(): boolean {
		return this.#ws?.readyState === OPEN;
	}

	start(): void {
		this.#stopped = false;
		this.#connect();
	}

	stop(): void {
		this.#stopped = true;
		this.#clearTimer();
		const ws = this.#ws;
		this.#ws = null;
		if (ws) {
			ws.onopen = ws.onmessage = ws.onclose = ws.onerror = null;
			ws.close(1000);
		}
		this.handlers.status('stopped');
	}

	/** Connects now unless a socket is open or connecting (the session came back, or the reader asked). */
	reconnectNow(): void {
		if (this.#stopped || this.#ws) return;
		this.#live = true;
		this.#clearTimer();
		this.#connect();
	}

	/** Call on visibilitychange (visible), pageshow and online. */
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

	/** Sends keystrokes (xterm's `onData` text, UTF-8 encoded). */
	input(text: string): boolean {
		return this.#send(this.#encoder.encode(text));
	}

	/** Sends raw bytes (xterm's `onBinary`: one byte per character). */
	binary(data: string): boolean {
		const bytes = new Uint8Array(data.length);
		for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
		return this.#send(bytes);
	}

	/** Sends the terminal size; repeats are skipped, and the last size is sent again on every open. */
	resize(cols: number, rows: number): void {
		const msg = resizeMessage(cols, rows);
		if (!msg) return;
		this.#lastSize = msg;
		if (this.connected) this.#ws!.send(msg);
	}

	#send(bytes: Uint8Array): boolean {
		if (!this.connected) return false;
		this.#ws!.send(bytes);
		return true;
	}

	#connect(): void {
		if (this.#stopped || !this.#live) return;
		let ws: SocketLike;
		try {
			ws = this.env.connect(this.url);
		} catch {
			this.#scheduleRetry();
			return;
		}
		ws.binaryType = 'arraybuffer';
		this.#ws = ws;
		this.handlers.status(this.#attempt ? 'reconnecting' : 'connecting');
		ws.onopen = () => {
			this.#attempt = 0;
			this.handlers.open();
			if (this.#lastSize) ws.send(this.#lastSize);
			this.handlers.status('open');
		};
		ws.onmessage = (ev) => {
			const d = ev.data;
			if (d instanceof ArrayBuffer) this.handlers.data(new Uint8Array(d));
			else if (ArrayBuffer.isView(d)) this.handlers.data(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
			// Text frames carry no output today; they are ignored.
		};
		ws.onclose = (ev) => {
			if (this.#ws !== ws) return;
			this.#ws = null;
			const meaning = closeMeaning(ev.code);
			if (meaning === 'gone') {
				this.#live = false;
				this.handlers.status('gone');
				return;
			}
			if (meaning === 'failed') {
				this.#live = false;
				this.handlers.status('failed', ev.reason || 'The server could not start a terminal.');
				return;
			}
			if (meaning === 'untrusted') {
				// Retrying cannot help until the user trusts the workspace file; `reconnectNow` follows that.
				this.#live = false;
				this.handlers.status('untrusted', ev.reason);
				return;
			}
			// Perhaps the upgrade was refused for want of a login (a browser cannot tell): the gate asks.
			reportSocketFailure();
			this.#scheduleRetry(closeNotice(ev.code, ev.reason) ?? undefined);
		};
	}

	/** `why`: what the server said when it closed (a message over its limit), for the status line. */
	#scheduleRetry(why?: string): void {
		if (!shouldRetryAfterClose({ live: this.#live, visible: this.env.visible(), closedByUs: this.#stopped }) || !this.env.online()) {
			// A hidden tab or a lost network waits for `lifecycle()`.
			this.handlers.status('reconnecting', why);
			return;
		}
		this.#clearTimer();
		this.#attempt += 1;
		this.handlers.status('reconnecting', why);
		this.#timer = this.env.setTimeout(() => {
			this.#timer = null;
			this.#connect();
		}, backoffDelay(this.#attempt));
	}

	#clearTimer(): void {
		if (this.#timer !== null) this.env.clearTimeout(this.#timer);
		this.#timer = null;
	}
}
