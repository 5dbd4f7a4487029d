// The reconnecting socket's policy through the production `browserEnv`, against a scripted WebSocket and page
// (fake-browser.ts) and vitest's fake clock: status transitions, the backoff after an unexpected close, final
// close codes, stop and its cleanup, the lifecycle throttle, offline drops and the report to the login gate.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { setAuthListeners } from '../auth/signals';
import { installFakeBrowser, type FakeBrowser } from './fake-browser';
import { ReconnectingSocket, type ReconnectingStatus, type ServerClose, type SocketSpec } from './reconnecting-socket';

let page: FakeBrowser;
let changes: [ReconnectingStatus, ServerClose | undefined][];
let messages: unknown[];
let failures: number;

function make(spec: Partial<SocketSpec> = {}): ReconnectingSocket {
	return new ReconnectingSocket({
		url: () => 'ws://h/ws/x',
		message: (d) => messages.push(d),
		change: (s, close) => changes.push([s, close]),
		...spec
	});
}

const statuses = () => changes.map(([s]) => s);

beforeEach(() => {
	vi.useFakeTimers();
	page = installFakeBrowser();
	changes = [];
	messages = [];
	failures = 0;
	setAuthListeners({ unauthorized: () => {}, socketFailure: () => failures++ });
});

afterEach(() => {
	vi.useRealTimers();
	vi.unstubAllGlobals();
});

describe('ReconnectingSocket', () => {
	it('goes idle, connecting, open, reconnecting with the close, connecting again as retry 1, open', () => {
		const s = make();
		expect(s.status).toBe('idle');
		s.start();
		expect(page.last().url).toBe('ws://h/ws/x');
		expect(s.status).toBe('connecting');
		page.last().open();
		expect(s.connected).toBe(true);
		page.last().drop(1001, 'going away');
		expect(s.connected).toBe(false);
		expect(s.attempt).toBe(1);
		vi.advanceTimersByTime(2000);
		expect(s.attempt).toBe(1); // still counting while the retry opens
		page.last().open();
		expect(s.attempt).toBe(0);
		expect(changes).toEqual([
			['connecting', undefined],
			['open', undefined],
			['reconnecting', { code: 1001, reason: 'going away' }],
			['connecting', undefined],
			['open', undefined]
		]);
	});

	it('backs off 2 s, 4 s, 8 s, 15 s, 15 s after unexpected closes, and starts over after an open', () => {
		const s = make();
		s.start();
		for (const delay of [2000, 4000, 8000, 15000, 15000]) {
			const before = page.sockets.length;
			page.last().drop();
			vi.advanceTimersByTime(delay - 1);
			expect(page.sockets).toHaveLength(before);
			vi.advanceTimersByTime(1);
			expect(page.sockets).toHaveLength(before + 1);
		}
		expect(s.attempt).toBe(5);
		page.last().open();
		page.last().drop();
		vi.advanceTimersByTime(1999);
		const before = page.sockets.length;
		vi.advanceTimersByTime(1);
		expect(page.sockets).toHaveLength(before + 1);
	});

	it('reports every unexpected close to the login gate, but not a final close or a stop', () => {
		const s = make({ isFinal: (code) => code === 4004 });
		s.start();
		page.last().drop(1006);
		expect(failures).toBe(1);
		vi.advanceTimersByTime(2000);
		page.last().drop(4004, 'Session not found');
		expect(failures).toBe(1);
		s.reconnectNow();
		s.stop();
		expect(failures).toBe(1);
	});

	it('does not reconnect after a final close code until reconnectNow', () => {
		const s = make({ isFinal: (code) => code === 4004 });
		s.start();
		page.last().open();
		page.last().drop(4004, 'Session not found');
		expect(changes.at(-1)).toEqual(['ended', { code: 4004, reason: 'Session not found' }]);
		expect(s.live).toBe(false);
		expect(vi.getTimerCount()).toBe(0);
		page.setVisible(false);
		page.setVisible(true);
		page.window.fire('pageshow');
		vi.advanceTimersByTime(60_000);
		expect(page.sockets).toHaveLength(1);
		s.reconnectNow();
		expect(s.live).toBe(true);
		expect(page.sockets).toHaveLength(2);
	});

	it('closes with 1000 on stop and never reconnects afterwards, not even from a pending retry', () => {
		const s = make();
		s.start();
		page.last().drop();
		expect(vi.getTimerCount()).toBe(1);
		s.stop();
		expect(s.status).toBe('stopped');
		expect(vi.getTimerCount()).toBe(0);
		vi.advanceTimersByTime(60_000);
		s.reconnectNow();
		s.lifecycle();
		expect(page.sockets).toHaveLength(1);

		const t = make();
		t.start();
		t.stop();
		expect(page.last().closedWith).toBe(1000);
		// The close that follows is not heard: no retry, no report.
		page.last().drop(1000);
		expect(statuses().at(-1)).toBe('stopped');
		expect(failures).toBe(1);
		expect(vi.getTimerCount()).toBe(0);
	});

	it('removes its page listeners on stop', () => {
		const s = make();
		s.start();
		expect(page.document.listenerCount).toBe(1);
		expect(page.window.listenerCount).toBe(3);
		s.start(); // a second start adds nothing and opens nothing
		expect(page.document.listenerCount + page.window.listenerCount).toBe(4);
		expect(page.sockets).toHaveLength(1);
		s.stop();
		expect(page.document.listenerCount + page.window.listenerCount).toBe(0);
		page.setVisible(true);
		page.setOnline(true);
		page.window.fire('pageshow');
		expect(page.sockets).toHaveLength(1);
	});

	it('waits for a hidden tab to come back instead of retrying, then reconnects at once', () => {
		const s = make();
		s.start();
		page.setVisible(false);
		page.last().drop();
		expect(s.status).toBe('reconnecting');
		expect(vi.getTimerCount()).toBe(0);
		expect(page.sockets).toHaveLength(1);
		page.setVisible(true);
		expect(page.sockets).toHaveLength(2);
		expect(s.attempt).toBe(0);
	});

	it('throttles lifecycle reconnects to one per 1200 ms, and a lifecycle reconnect cancels the backoff', () => {
		const s = make();
		s.start();
		page.window.fire('pageshow'); // a socket is opening: nothing to do
		expect(page.sockets).toHaveLength(1);
		page.last().drop();
		page.window.fire('pageshow');
		expect(page.sockets).toHaveLength(2);
		expect(vi.getTimerCount()).toBe(0); // the 2 s retry is cancelled
		page.last().drop();
		vi.advanceTimersByTime(1000);
		page.window.fire('pageshow');
		page.setVisible(true);
		expect(page.sockets).toHaveLength(2); // within 1200 ms of the previous one
		vi.advanceTimersByTime(200);
		page.setVisible(true);
		expect(page.sockets).toHaveLength(3);
		expect(s.status).toBe('connecting');
	});

	it('drops a socket when the page goes offline and reconnects on online, without a timer in between', () => {
		const s = make();
		s.start();
		page.last().open();
		page.setOnline(false);
		expect(page.last().closedWith).toBe(1005);
		expect(changes.at(-1)).toEqual(['reconnecting', undefined]);
		expect(failures).toBe(0);
		expect(vi.getTimerCount()).toBe(0);
		page.setOnline(true);
		expect(page.sockets).toHaveLength(2);
		expect(s.status).toBe('connecting');
	});

	it('does not retry a close while offline', () => {
		const s = make();
		s.start();
		page.navigator.onLine = false;
		page.last().drop();
		expect(vi.getTimerCount()).toBe(0);
		expect(s.status).toBe('reconnecting');
	});

	it('cancels a pending retry when the owner says it is not live', () => {
		const s = make();
		s.start();
		page.last().drop();
		s.live = false;
		expect(vi.getTimerCount()).toBe(0);
		vi.advanceTimersByTime(60_000);
		page.window.fire('pageshow');
		expect(page.sockets).toHaveLength(1);
	});

	it('retries with backoff when the socket cannot even be created', () => {
		let n = 0;
		const s = make({
			url: () => {
				if (n++ === 0) throw new SyntaxError('bad URL');
				return 'ws://h/ws/x';
			}
		});
		s.start();
		expect(page.sockets).toHaveLength(0);
		expect(s.status).toBe('reconnecting');
		vi.advanceTimersByTime(2000);
		expect(page.sockets).toHaveLength(1);
	});

	it('runs the open hook before saying open, sets the binary type, and sends only while open', () => {
		const order: string[] = [];
		const s = make({
			binaryType: 'arraybuffer',
			open: (send) => {
				order.push('hook');
				send('hello');
			},
			change: (st) => order.push(st)
		});
		expect(s.send('early')).toBe(false);
		s.start();
		expect(page.last().binaryType).toBe('arraybuffer');
		expect(s.send('too early')).toBe(false);
		page.last().open();
		expect(order).toEqual(['connecting', 'hook', 'open']);
		expect(s.send(new Uint8Array([1, 2]))).toBe(true);
		expect(page.last().sent).toEqual(['hello', new Uint8Array([1, 2])]);
		const buf = new Uint8Array([7]).buffer;
		page.last().receive(buf);
		expect(messages).toEqual([buf]);
	});

	it('does not hear the close of a socket it dropped', () => {
		const s = make();
		s.start();
		const first = page.last();
		page.setOnline(false);
		page.setOnline(true);
		expect(page.sockets).toHaveLength(2);
		first.drop(); // its handlers were detached on offline
		expect(s.status).toBe('connecting');
		expect(vi.getTimerCount()).toBe(0);
	});
});
