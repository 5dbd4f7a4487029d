// Test support for the socket specs, never imported by the app: a scripted WebSocket and the page globals the
// sockets read (`document.visibilityState`, `navigator.onLine`, `location`, lifecycle events), installed with
// `vi.stubGlobal` so the production `browserEnv` is what the specs drive. Listeners are counted, so a spec can
// check that a stopped socket left none behind.

import { vi } from 'vitest';
import type { SocketLike } from './reconnecting-socket';

export class FakeWebSocket implements SocketLike {
	static readonly OPEN = 1;
	/** Every socket created since `installFakeBrowser`, oldest first. */
	static all: FakeWebSocket[] = [];

	binaryType = 'blob';
	readyState = 0;
	sent: (string | Uint8Array)[] = [];
	/** The code the client closed with (1005 for none), or null while it has not. */
	closedWith: number | null = null;
	onopen: ((ev: unknown) => void) | null = null;
	onmessage: ((ev: { data: unknown }) => void) | null = null;
	onclose: ((ev: { code: number; reason: string }) => void) | null = null;
	onerror: ((ev: unknown) => void) | null = null;

	constructor(readonly url: string) {
		FakeWebSocket.all.push(this);
	}

	send(data: string | ArrayBufferLike | ArrayBufferView): void {
		if (typeof data === 'string') this.sent.push(data);
		else if (ArrayBuffer.isView(data)) this.sent.push(new Uint8Array(data.buffer, data.byteOffset, data.byteLength));
		else this.sent.push(new Uint8Array(data));
	}

	close(code?: number): void {
		this.closedWith = code ?? 1005;
		this.readyState = 3;
	}

	// The server's side.

	open(): void {
		this.readyState = 1;
		this.onopen?.({});
	}

	/** The server (or the network, with 1006) closes the connection. */
	drop(code = 1006, reason = ''): void {
		this.readyState = 3;
		this.onclose?.({ code, reason });
	}

	receive(data: unknown): void {
		this.onmessage?.({ data });
	}
}

/** An event target that knows how many listeners it holds. */
export class CountingTarget extends EventTarget {
	#listeners = new Map<string, Set<unknown>>();

	override addEventListener(type: string, fn: EventListenerOrEventListenerObject | null, opts?: AddEventListenerOptions | boolean): void {
		if (fn) (this.#listeners.get(type) ?? this.#listeners.set(type, new Set()).get(type)!).add(fn);
		super.addEventListener(type, fn, opts);
	}

	override removeEventListener(type: string, fn: EventListenerOrEventListenerObject | null, opts?: EventListenerOptions | boolean): void {
		this.#listeners.get(type)?.delete(fn);
		super.removeEventListener(type, fn, opts);
	}

	/** Listeners held now, of every type. */
	get listenerCount(): number {
		let n = 0;
		for (const set of this.#listeners.values()) n += set.size;
		return n;
	}

	fire(type: string): void {
		this.dispatchEvent(new Event(type));
	}
}

export interface FakeBrowser {
	document: CountingTarget & { visibilityState: 'visible' | 'hidden' };
	window: CountingTarget;
	navigator: { onLine: boolean };
	sockets: FakeWebSocket[];
	last(): FakeWebSocket;
	/** Hides or shows the tab, with its `visibilitychange`. */
	setVisible(visible: boolean): void;
	/** Loses or regains the network, with its `offline` or `online`. */
	setOnline(online: boolean): void;
}

/** Stubs `WebSocket`, `document`, `window`, `navigator` and `location` (`http://h`); undo with
 * `vi.unstubAllGlobals()`. */
export function installFakeBrowser(): FakeBrowser {
	FakeWebSocket.all = [];
	const document = Object.assign(new CountingTarget(), { visibilityState: 'visible' as 'visible' | 'hidden' });
	const window = new CountingTarget();
	const navigator = { onLine: true };
	vi.stubGlobal('WebSocket', FakeWebSocket);
	vi.stubGlobal('document', document);
	vi.stubGlobal('window', window);
	vi.stubGlobal('navigator', navigator);
	vi.stubGlobal('location', { protocol: 'http:', host: 'h' });
	return {
		document,
		window,
		navigator,
		sockets: FakeWebSocket.all,
		last: () => {
			const s = FakeWebSocket.all.at(-1);
			if (!s) throw new Error('no socket was created');
			return s;
		},
		setVisible(visible) {
			document.visibilityState = visible ? 'visible' : 'hidden';
			document.fire('visibilitychange');
		},
		setOnline(online) {
			navigator.onLine = online;
			window.fire(online ? 'online' : 'offline');
		}
	};
}
