import { describe, expect, it } from 'vitest';
import { backoffDelay, shouldLifecycleReconnect, shouldRetryAfterClose, socketUrl, type LifecycleInput } from './reconnect';

describe('backoff', () => {
	it('doubles from 2 s and caps at 15 s', () => {
		expect([1, 2, 3, 4, 5, 50].map(backoffDelay)).toEqual([2000, 4000, 8000, 15000, 15000, 15000]);
		expect(backoffDelay(0)).toBe(1000);
		expect(backoffDelay(-3)).toBe(1000);
	});
});

describe('lifecycle reconnect', () => {
	const base: LifecycleInput = { live: true, connected: false, hasSocket: false, visible: true, online: true, now: 10_000, lastAttempt: null };

	it('reconnects a live, visible, online, disconnected session', () => {
		expect(shouldLifecycleReconnect(base)).toBe(true);
	});

	it.each([
		['closed session', { live: false }],
		['already connected', { connected: true }],
		['socket still opening', { hasSocket: true }],
		['hidden tab', { visible: false }],
		['offline', { online: false }]
	])('does not reconnect: %s', (_name, patch) => {
		expect(shouldLifecycleReconnect({ ...base, ...patch })).toBe(false);
	});

	it('throttles attempts to one per 1200 ms', () => {
		expect(shouldLifecycleReconnect({ ...base, lastAttempt: 9_000 })).toBe(false);
		expect(shouldLifecycleReconnect({ ...base, lastAttempt: 8_800 })).toBe(true);
	});

	it('retries after a close only when live, visible and not closed on purpose', () => {
		expect(shouldRetryAfterClose({ live: true, visible: true, closedByUs: false })).toBe(true);
		expect(shouldRetryAfterClose({ live: true, visible: false, closedByUs: false })).toBe(false);
		expect(shouldRetryAfterClose({ live: true, visible: true, closedByUs: true })).toBe(false);
		expect(shouldRetryAfterClose({ live: false, visible: true, closedByUs: false })).toBe(false);
	});
});

describe('socket URL', () => {
	it('follows the page scheme', () => {
		expect(socketUrl({ protocol: 'http:', host: 'h:1' }, 'a b')).toBe('ws://h:1/ws/sessions/a%20b?mode=compact');
		expect(socketUrl({ protocol: 'https:', host: 'h' }, 'x')).toBe('wss://h/ws/sessions/x?mode=compact');
	});
});
