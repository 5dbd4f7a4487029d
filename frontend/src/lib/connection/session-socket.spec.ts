// The chat socket over the reconnecting base (fake-browser.ts): what it sends on every open, which frames reach
// the page, what 4004 and other closes tell it, and the `$state` it shows.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { ServerFrame } from '../api/protocol';
import { installFakeBrowser, type FakeBrowser } from './fake-browser';
import { SessionSocket } from './session-socket.svelte';

const VISIBLE = '{"type":"piface_visibility","visible":true}';

let page: FakeBrowser;
let log: string[];
let frames: ServerFrame[];

function make() {
	return new SessionSocket('s 1', {
		frame: (f) => frames.push(f),
		open: () => log.push('open'),
		gone: () => log.push('gone'),
		closed: (code, reason) => log.push(`closed ${code} ${reason}`)
	});
}

beforeEach(() => {
	vi.useFakeTimers();
	page = installFakeBrowser();
	log = [];
	frames = [];
});

afterEach(() => {
	vi.useRealTimers();
	vi.unstubAllGlobals();
});

describe('SessionSocket', () => {
	it('says whether the page is visible, asks for the history and the state on every open, and passes on text frames with a type', () => {
		const s = make();
		expect(s.status).toBe('idle');
		s.start();
		expect(page.last().url).toBe('ws://h/ws/sessions/s%201?mode=compact');
		expect(s.status).toBe('connecting');
		page.last().open();
		expect(s.status).toBe('open');
		expect(s.connected).toBe(true);
		expect(log).toEqual(['open']);
		expect(page.last().sent).toEqual([VISIBLE, '{"type":"piface_get_history"}', '{"type":"get_state"}']);
		page.last().receive('{"type":"agent_end"}');
		page.last().receive('not json');
		page.last().receive('{"no":"type"}');
		page.last().receive(new ArrayBuffer(2));
		expect(frames).toEqual([{ type: 'agent_end' }]);
		expect(s.send({ type: 'abort' })).toBe(true);
		expect(page.last().sent.at(-1)).toBe('{"type":"abort"}');
	});

	it('reports another close with its reason and retries, counting attempts', () => {
		const s = make();
		s.start();
		page.last().open();
		page.last().drop(1009, 'message over 1 MiB');
		expect(log.at(-1)).toBe('closed 1009 message over 1 MiB');
		expect(s.status).toBe('closed');
		expect(s.attempt).toBe(1);
		expect(s.send({ type: 'abort' })).toBe(false);
		vi.advanceTimersByTime(2000);
		expect(page.sockets).toHaveLength(2);
		page.last().open();
		expect(s.attempt).toBe(0);
		expect(page.last().sent).toEqual([VISIBLE, '{"type":"piface_get_history"}', '{"type":"get_state"}']);
	});

	it('treats 4004 as the session gone: no retry, and reconnectNow waits until the page says it is live', () => {
		const s = make();
		s.start();
		page.last().drop(4004, 'Session not found or not alive');
		expect(log).toEqual(['gone']);
		expect(s.status).toBe('closed');
		expect(vi.getTimerCount()).toBe(0);
		s.reconnectNow();
		expect(page.sockets).toHaveLength(1);
		s.live = true;
		s.reconnectNow();
		expect(page.sockets).toHaveLength(2);
	});

	it('tells the coordinator when the page is hidden or shown again, and stops listening when stopped', () => {
		const s = make();
		const before = page.document.listenerCount;
		s.start();
		page.setVisible(false); // not open yet: nothing to tell
		page.setVisible(true);
		page.last().open();
		expect(page.last().sent[0]).toBe(VISIBLE);
		page.setVisible(false);
		page.setVisible(true);
		expect(page.last().sent.slice(3)).toEqual(['{"type":"piface_visibility","visible":false}', VISIBLE]);
		// A page hidden while it reconnects says so at once.
		page.last().drop(1006);
		vi.advanceTimersByTime(2000);
		expect(page.sockets).toHaveLength(2);
		page.setVisible(false);
		page.last().open();
		expect(page.last().sent[0]).toBe('{"type":"piface_visibility","visible":false}');
		s.stop();
		expect(page.document.listenerCount).toBe(before);
	});

	it('shows closed after stop and stays closed', () => {
		const s = make();
		s.start();
		page.last().open();
		s.stop();
		expect(s.status).toBe('closed');
		expect(page.last().closedWith).toBe(1000);
		page.setOnline(true);
		expect(page.sockets).toHaveLength(1);
	});
});
