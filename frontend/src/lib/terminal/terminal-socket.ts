// The terminal's WebSocket: binary PTY output in, keystrokes (binary) and resizes (text JSON) out, over a
// `ReconnectingSocket` (connection/reconnecting-socket.ts: backoff after an unexpected close, throttled
// reconnects on visibility/pageshow/online, a dead socket dropped on offline). Closes 4004 (session gone), 1011
// (PTY failed) and 4409 (workspace untrusted) are final until `reconnectNow`. Plain TypeScript: the view keeps
// the status it is told in its own `$state`. The browser pieces come in a `SocketEnv`, so the specs drive it
// with fakes. Not here: xterm.js, which the view owns.

import { closeNotice } from '../connection/limits';
import { ReconnectingSocket, browserEnv, type ReconnectingStatus, type ServerClose, type SocketEnv } from '../connection/reconnecting-socket';
import { closeMeaning, resizeMessage } from './protocol';

export type { SocketLike } from '../connection/reconnecting-socket';

export type TerminalStatus = 'connecting' | 'open' | 'reconnecting' | 'gone' | 'failed' | 'untrusted' | 'stopped';

export interface TerminalHandlers {
	/** PTY output (the scrollback first after each open). */
	data(bytes: Uint8Array): void;
	/** A connection opened: the view clears the screen, since the server replays its scrollback. */
	open(): void;
	status(s: TerminalStatus, detail?: string): void;
}

/** The browser pieces, as for every socket. */
export type TerminalEnv = SocketEnv;

export class TerminalSocket {
	#lastSize: string | null = null;
	readonly #encoder = new TextEncoder();
	readonly #socket: ReconnectingSocket;

	constructor(
		readonly url: string,
		private readonly handlers: TerminalHandlers,
		env: TerminalEnv = browserEnv()
	) {
		this.#socket = new ReconnectingSocket(
			{
				url: () => this.url,
				binaryType: 'arraybuffer',
				open: (send) => {
					this.handlers.open();
					if (this.#lastSize) send(this.#lastSize);
				},
				message: (d) => {
					if (d instanceof ArrayBuffer) this.handlers.data(new Uint8Array(d));
					else if (ArrayBuffer.isView(d)) this.handlers.data(new Uint8Array(d.buffer, d.byteOffset, d.byteLength));
					// Text frames carry no output today; they are ignored.
				},
				// Retrying cannot help a session that is not live, a PTY that failed, or commands that wait for the
				// user's trust; `reconnectNow` follows a resume or the trust.
				isFinal: (code) => closeMeaning(code) !== 'retry',
				change: (s, close) => this.#status(s, close)
			},
			env
		);
	}

	get connected(): boolean {
		return this.#socket.connected;
	}

	/** Connects and follows the page's lifecycle (visibilitychange, pageshow, online, offline). */
	start(): void {
		this.#socket.start();
	}

	stop(): void {
		this.#socket.stop();
	}

	/** Connects now unless a socket is open or connecting (the session came back, or the reader asked). */
	reconnectNow(): void {
		this.#socket.reconnectNow();
	}

	/** What visibilitychange (visible), pageshow and online do; the socket listens to them itself once started. */
	lifecycle(): void {
		this.#socket.lifecycle();
	}

	/** Sends keystrokes (xterm's `onData` text, UTF-8 encoded). */
	input(text: string): boolean {
		return this.#socket.send(this.#encoder.encode(text));
	}

	/** Sends raw bytes (xterm's `onBinary`: one byte per character). */
	binary(data: string): boolean {
		const bytes = new Uint8Array(data.length);
		for (let i = 0; i < data.length; i++) bytes[i] = data.charCodeAt(i) & 0xff;
		return this.#socket.send(bytes);
	}

	/** Sends the terminal size; repeats are skipped, and the last size is sent again on every open. */
	resize(cols: number, rows: number): void {
		const msg = resizeMessage(cols, rows);
		if (!msg) return;
		this.#lastSize = msg;
		this.#socket.send(msg);
	}

	#status(s: ReconnectingStatus, close?: ServerClose): void {
		switch (s) {
			case 'idle':
				return;
			case 'connecting':
				this.handlers.status(this.#socket.attempt ? 'reconnecting' : 'connecting');
				return;
			case 'open':
			case 'stopped':
				this.handlers.status(s);
				return;
			case 'reconnecting':
				// Why the server closed (a message over its limit), for the status line.
				this.handlers.status('reconnecting', (close && closeNotice(close.code, close.reason)) ?? undefined);
				return;
			case 'ended': {
				const meaning = close ? closeMeaning(close.code) : 'retry';
				if (meaning === 'failed') this.handlers.status('failed', close?.reason || 'The server could not start a terminal.');
				else if (meaning === 'untrusted') this.handlers.status('untrusted', close?.reason);
				else this.handlers.status('gone');
				return;
			}
		}
	}
}
