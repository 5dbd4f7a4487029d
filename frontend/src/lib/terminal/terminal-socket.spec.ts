import { beforeEach, describe, expect, it } from 'vitest';
import type { LifecycleListeners } from '../connection/reconnecting-socket';
import { TerminalSocket, type SocketLike, type TerminalEnv, type TerminalStatus } from './terminal-socket';

class FakeSocket implements SocketLike {
	binaryType = 'blob';
	readyState = 0;
	sent: (string | Uint8Array)[] = [];
	closedWith: number | null = null;
	onopen: ((ev: unknown) => void) | null = null;
	onmessage: ((ev: { data: unknown }) => void) | null = null;
	onclose: ((ev: { code: number; reason: string }) => void) | null = null;
	onerror: ((ev: unknown) => void) | null = null;
	constructor(readonly url: string) {}
	send(data: string | ArrayBufferLike | ArrayBufferView) {
		this.sent.push(typeof data === 'string' ? data : new Uint8Array(data as ArrayBuffer));
	}
	close(code?: number) {
		this.closedWith = code ?? 1005;
		this.readyState = 3;
	}
	// Server side of the fake.
	open() {
		this.readyState = 1;
		this.onopen?.({});
	}
	drop(code = 1006, reason = '') {
		this.readyState = 3;
		this.onclose?.({ code, reason });
	}
	output(bytes: number[]) {
		this.onmessage?.({ data: new Uint8Array(bytes).buffer });
	}
}

let sockets: FakeSocket[];
let timers: { fn: () => void; ms: number; cleared: boolean }[];
let statuses: TerminalStatus[];
let details: (string | undefined)[];
let output: number[][];
let opens: number;
let visible: boolean;
let online: boolean;
let now: number;
/** The page-lifecycle listeners the socket installed (null when none). */
let page: LifecycleListeners | null;

const env: TerminalEnv = {
	connect: (url) => {
		const s = new FakeSocket(url);
		sockets.push(s);
		return s;
	},
	setTimeout: (fn, ms) => {
		const t = { fn, ms, cleared: false };
		timers.push(t);
		return t;
	},
	clearTimeout: (t) => {
		(t as { cleared: boolean }).cleared = true;
	},
	visible: () => visible,
	online: () => online,
	now: () => now,
	listen: (on) => {
		page = on;
		return () => {
			page = null;
		};
	}
};

function make() {
	return new TerminalSocket('ws://h/ws/sessions/s/terminal', {
		data: (b) => output.push([...b]),
		open: () => opens++,
		status: (s, d) => {
			statuses.push(s);
			details.push(d);
		}
	}, env);
}

const last = () => sockets[sockets.length - 1]!;
const pending = () => timers.filter((t) => !t.cleared);

beforeEach(() => {
	sockets = [];
	timers = [];
	statuses = [];
	details = [];
	output = [];
	opens = 0;
	visible = true;
	online = true;
	now = 10_000;
	page = null;
});

describe('TerminalSocket', () => {
	it('connects, relays output, and sends keystrokes as binary and the size as text', () => {
		const t = make();
		t.resize(100, 30);
		t.start();
		expect(last().binaryType).toBe('arraybuffer');
		expect(t.input('x')).toBe(false); // not open yet: keystrokes are not queued
		last().open();
		expect(opens).toBe(1);
		expect(last().sent).toEqual(['{"type":"resize","cols":100,"rows":30}']);
		last().output([104, 105]);
		expect(output).toEqual([[104, 105]]);
		expect(t.input('é')).toBe(true);
		expect(t.binary('\x00\xff')).toBe(true);
		t.resize(90, 20);
		expect(last().sent.slice(1)).toEqual([new Uint8Array([0xc3, 0xa9]), new Uint8Array([0, 255]), '{"type":"resize","cols":90,"rows":20}']);
		expect(statuses).toEqual(['connecting', 'open']);
	});

	it('reconnects with backoff after an unexpected close and resends the size', () => {
		const t = make();
		t.start();
		last().open();
		t.resize(80, 24);
		last().drop();
		expect(statuses.at(-1)).toBe('reconnecting');
		expect(pending().map((x) => x.ms)).toEqual([2000]);
		pending()[0]!.fn();
		expect(sockets).toHaveLength(2);
		last().drop();
		expect(pending().at(-1)!.ms).toBe(4000);
		pending().at(-1)!.fn();
		last().open();
		expect(opens).toBe(2);
		expect(last().sent).toEqual(['{"type":"resize","cols":80,"rows":24}']);
		// The attempt counter starts over after an open.
		last().drop();
		expect(pending().at(-1)!.ms).toBe(2000);
	});

	it('says why the server closed for a message over its limit, and reconnects', () => {
		const t = make();
		t.start();
		last().open();
		last().drop(1009, 'message over 1 MiB');
		expect(statuses.at(-1)).toBe('reconnecting');
		expect(details.at(-1)).toBe('The server closed the connection: message over 1 MiB.');
		expect(pending()).toHaveLength(1);
		pending()[0]!.fn();
		last().drop();
		expect(details.at(-1)).toBeUndefined();
	});

	it('stops on 4004 (session not live) until asked to reconnect', () => {
		const t = make();
		t.start();
		last().drop(4004, 'Session not found or not alive');
		expect(statuses.at(-1)).toBe('gone');
		expect(pending()).toEqual([]);
		t.lifecycle();
		expect(sockets).toHaveLength(1);
		t.reconnectNow();
		expect(sockets).toHaveLength(2);
	});

	it('reports a PTY failure and does not retry', () => {
		const seen: [TerminalStatus, string | undefined][] = [];
		const s = new TerminalSocket('u', { data() {}, open() {}, status: (x, d) => seen.push([x, d]) }, env);
		s.start();
		last().drop(1011, 'Failed to create terminal');
		expect(seen.at(-1)).toEqual(['failed', 'Failed to create terminal']);
		expect(pending()).toEqual([]);
	});

	it('waits for the page to be visible and online, with the lifecycle throttle', () => {
		const t = make();
		t.start();
		visible = false;
		last().drop();
		expect(pending()).toEqual([]);
		visible = true;
		t.lifecycle();
		expect(sockets).toHaveLength(2);
		last().drop();
		pending().forEach((x) => (x.cleared = true));
		now += 500;
		t.lifecycle();
		expect(sockets).toHaveLength(2); // within 1200 ms of the previous lifecycle attempt
		now += 1000;
		t.lifecycle();
		expect(sockets).toHaveLength(3);
	});

	it('stops on 4409 (untrusted workspace commands) until the trust is given and it is asked to reconnect', () => {
		const t = make();
		t.start();
		last().drop(4409, 'Workspace not trusted: /p/.piface/workspace.toml has a [launch] for the terminal');
		expect(statuses.at(-1)).toBe('untrusted');
		expect(details.at(-1)).toMatch(/^Workspace not trusted/);
		expect(pending()).toEqual([]);
		t.lifecycle();
		expect(sockets).toHaveLength(1);
		t.reconnectNow();
		expect(sockets).toHaveLength(2);
		last().open();
		expect(statuses.at(-1)).toBe('open');
	});

	it('drops the socket when the page goes offline and connects again on the next lifecycle event', () => {
		const t = make();
		t.start();
		last().open();
		online = false;
		page!.offline();
		expect(last().closedWith).toBe(1005);
		expect(statuses.at(-1)).toBe('reconnecting');
		expect(pending()).toEqual([]); // no timer while offline: `online` reconnects
		online = true;
		page!.resume();
		expect(sockets).toHaveLength(2);
		expect(statuses.at(-1)).toBe('connecting');
	});

	it('closes for good on stop', () => {
		const t = make();
		t.start();
		last().open();
		t.stop();
		expect(last().closedWith).toBe(1000);
		expect(statuses.at(-1)).toBe('stopped');
		expect(page).toBeNull(); // stopped listening to the page
		t.reconnectNow();
		t.lifecycle();
		expect(sockets).toHaveLength(1);
	});
});
