// The dashboard socket over the reconnecting base (connection/fake-browser.ts): `synced` follows the snapshot
// of the connection now open, and no close code stops it retrying.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import type { DashboardFrame } from '../api/protocol';
import { installFakeBrowser, type FakeBrowser } from '../connection/fake-browser';
import { DashboardSocket } from './dashboard-socket.svelte';

let page: FakeBrowser;
let frames: DashboardFrame[];

const SNAPSHOT = JSON.stringify({ type: 'piface_dashboard', sessions: [], agents: [] });

beforeEach(() => {
	vi.useFakeTimers();
	page = installFakeBrowser();
	frames = [];
});

afterEach(() => {
	vi.useRealTimers();
	vi.unstubAllGlobals();
});

describe('DashboardSocket', () => {
	it('is synced from the snapshot of the open connection until it closes', () => {
		const d = new DashboardSocket((f) => frames.push(f));
		d.start();
		expect(page.last().url).toBe('ws://h/ws/dashboard');
		page.last().open();
		expect(d.status).toBe('open');
		expect(d.synced).toBe(false);
		page.last().receive('{"type":"nonsense"}');
		expect(d.synced).toBe(false);
		page.last().receive(SNAPSHOT);
		expect(d.synced).toBe(true);
		expect(frames.map((f) => f.type)).toEqual(['piface_dashboard']);
		page.last().drop();
		expect(d.status).toBe('closed');
		expect(d.synced).toBe(false);
		vi.advanceTimersByTime(2000);
		page.last().open();
		expect(d.synced).toBe(false); // the new connection's snapshot has not come yet
		page.last().receive(SNAPSHOT);
		expect(d.synced).toBe(true);
		page.setOnline(false); // a dead socket is dropped
		expect(d.synced).toBe(false);
		expect(d.status).toBe('closed');
	});

	it('retries after any close code, 4004 included', () => {
		const d = new DashboardSocket(() => {});
		d.start();
		page.last().drop(4004, '');
		vi.advanceTimersByTime(2000);
		expect(page.sockets).toHaveLength(2);
		d.stop();
		expect(d.status).toBe('closed');
		vi.advanceTimersByTime(60_000);
		expect(page.sockets).toHaveLength(2);
	});
});
