// The pure parts of Web Push: reading a payload, what the notification shows, which window a tap uses, the key
// and subscription shapes.

import { describe, expect, it } from 'vitest';
import {
	applicationServerKey,
	notificationOptions,
	notificationTarget,
	parsePushPayload,
	pickWindow,
	safePath,
	subscriptionBody
} from './notification';

const turnEnd = {
	type: 'piface_notification',
	kind: 'turn_end',
	title: 'fix the relay',
	body: 'pi is done and waiting for you',
	url: '/session/s1',
	tag: 'piface-session-s1',
	session_id: 's1'
};

describe('parsePushPayload', () => {
	it('reads the coordinator payload', () => {
		expect(parsePushPayload(JSON.stringify(turnEnd))).toEqual(turnEnd);
	});

	it('refuses what is not ours, and fills what is missing', () => {
		for (const bad of [null, undefined, '', 'not json', '[]', '{"type":"other","kind":"test","title":"x"}', '{"type":"piface_notification","kind":"party","title":"x"}', '{"type":"piface_notification","kind":"test"}']) {
			expect(parsePushPayload(bad), String(bad)).toBeNull();
		}
		expect(parsePushPayload('{"type":"piface_notification","kind":"test","title":"piface","url":"https://evil.example/"}')).toEqual({
			type: 'piface_notification',
			kind: 'test',
			title: 'piface',
			body: '',
			url: '/',
			tag: 'piface-test',
			session_id: null
		});
	});
});

describe('safePath', () => {
	it('lets only paths on this origin through', () => {
		expect(safePath('/session/a%20b')).toBe('/session/a%20b');
		for (const bad of ['https://evil.example/', '//evil.example/x', '/\\evil.example', 'javascript:alert(1)', '', null]) expect(safePath(bad)).toBe('/');
	});
});

describe('notificationOptions', () => {
	it('shows the title and body, replaces the same tag with an alert, and keeps the page to open', () => {
		const n = parsePushPayload(JSON.stringify(turnEnd))!;
		const { title, options } = notificationOptions(n);
		expect(title).toBe('fix the relay');
		expect(options).toMatchObject({ body: 'pi is done and waiting for you', tag: 'piface-session-s1', renotify: true, requireInteraction: false });
		expect(notificationTarget(options.data)).toBe('/session/s1');
		const ask = notificationOptions({ ...n, kind: 'attention' });
		expect(ask.options.requireInteraction).toBe(true);
		expect(notificationTarget(null)).toBe('/');
		expect(notificationTarget({ url: 'https://evil.example/' })).toBe('/');
	});
});

describe('pickWindow', () => {
	const origin = 'https://box.ts.net';
	it('prefers the window showing the session, then a focused one, then any of ours', () => {
		const windows = [
			{ url: 'https://other.example/session/s1', focused: true },
			{ url: `${origin}/`, focused: false },
			{ url: `${origin}/session/s2?tab=files`, focused: true },
			{ url: `${origin}/session/s1?tab=chat`, focused: false }
		];
		expect(pickWindow(windows, '/session/s1', origin)).toBe(3);
		expect(pickWindow(windows, '/session/s9', origin)).toBe(2);
		expect(pickWindow(windows.slice(0, 2), '/session/s9', origin)).toBe(1);
		expect(pickWindow(windows.slice(0, 1), '/session/s1', origin)).toBe(-1);
		expect(pickWindow([], '/', origin)).toBe(-1);
	});
});

describe('applicationServerKey', () => {
	it('decodes base64url without padding to the key bytes', () => {
		const bytes = Uint8Array.from({ length: 65 }, (_, i) => (i * 37 + 4) % 256);
		const b64url = Buffer.from(bytes).toString('base64url');
		expect(b64url).not.toContain('=');
		expect([...applicationServerKey(b64url)]).toEqual([...bytes]);
	});
});

describe('subscriptionBody', () => {
	it('takes the endpoint and keys of PushSubscription.toJSON(), or nothing without keys', () => {
		expect(subscriptionBody({ endpoint: 'https://push.example/1', expirationTime: null, keys: { p256dh: 'BP', auth: 'au' } })).toEqual({
			endpoint: 'https://push.example/1',
			keys: { p256dh: 'BP', auth: 'au' }
		});
		expect(subscriptionBody({ endpoint: 'https://push.example/1' })).toBeNull();
		expect(subscriptionBody({ keys: { p256dh: 'BP', auth: 'au' } })).toBeNull();
	});
});
