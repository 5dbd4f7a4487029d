// Web Push in Chromium at 375 px, against piface, real pi and the fake LLM. What is real and what is not:
// - real: the page asks the coordinator for its VAPID key (GET /api/push/key); the session page tells the
//   coordinator whether it is visible (`piface_visibility` on its socket, checked on the wire and when the page is
//   hidden); the service worker's own `push` handler shows the notification, read back with
//   `registration.getNotifications()`, and the dashboard's notifications menu.
// - substituted: headless Chromium has no push service here (it cannot reach Google's), so no browser
//   subscription exists and the coordinator's encrypted push never reaches this browser. The push is delivered to
//   the service worker with CDP's `ServiceWorker.deliverPushMessage`, carrying the payload the coordinator
//   encrypts (the golden fixture fixtures/browser/push/piface_notification.json, its session made this test's),
//   i.e. what the browser hands the worker after decrypting. The coordinator's side (encryption, the VAPID token,
//   the decision to push) is tested in Rust against test-support's push-service stand-in, decrypted there.

import assert from 'node:assert/strict';
import { readFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { guardedContext, http, launchBrowser, repoRoot, screenshotPath, startStack, waitFor } from './harness.mjs';

let stack;
let browser;
let sessionId;
const pageErrors = [];
const foreignRequests = [];
const PHONE = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

describe('Web Push', { timeout: 240_000 }, () => {
	before(async () => {
		stack = await startStack();
		browser = await launchBrowser(stack.bins);
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: stack.project, provider: 'fake', model: 'fake-model', session_name: 'pushy', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		sessionId = created.json.piface_id;
	});

	after(async () => {
		await browser?.close();
		await stack?.stop();
		assert.deepEqual(foreignRequests, [], 'no request left piface and no CSP violation');
		assert.deepEqual(pageErrors, [], 'no page errors');
	});

	test('the session page reports its visibility; the service worker shows a push and the menu offers notifications', async () => {
		const { context, foreign } = await guardedContext(browser, PHONE, { login: stack });
		await context.grantPermissions(['notifications'], { origin: stack.base });
		const page = await context.newPage();
		page.on('pageerror', (e) => pageErrors.push(String(e)));
		const sent = [];
		page.on('websocket', (ws) => {
			if (ws.url().includes(`/ws/sessions/${sessionId}`)) ws.on('framesent', (f) => sent.push(String(f.payload)));
		});

		await page.goto(`${stack.base}/session/${sessionId}`);
		await waitFor(() => sent.includes('{"type":"piface_visibility","visible":true}'), { what: 'the visibility frame' });
		assert.equal(sent[0], '{"type":"piface_visibility","visible":true}', 'the first frame of the socket');
		// Hidden (the phone locked, another app): the coordinator is told.
		await page.evaluate(() => {
			Object.defineProperty(document, 'visibilityState', { value: 'hidden', configurable: true });
			document.dispatchEvent(new Event('visibilitychange'));
		});
		await waitFor(() => sent.includes('{"type":"piface_visibility","visible":false}'), { what: 'the hidden frame' });

		// The service worker shows what a push carries.
		await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
		const cdp = await context.newCDPSession(page);
		const registrations = [];
		cdp.on('ServiceWorker.workerRegistrationUpdated', (e) => registrations.push(...e.registrations));
		await cdp.send('ServiceWorker.enable');
		const reg = await waitFor(() => registrations.find((r) => r.scopeURL === `${stack.base}/` && !r.isDeleted), { what: 'the worker registration' });
		const fixture = JSON.parse(readFileSync(join(repoRoot, 'fixtures/browser/push/piface_notification.json'), 'utf8'));
		const payload = { ...fixture, url: `/session/${sessionId}`, tag: `piface-session-${sessionId}`, session_id: sessionId, title: 'pushy' };
		await cdp.send('ServiceWorker.deliverPushMessage', { origin: stack.base, registrationId: reg.registrationId, data: JSON.stringify(payload) });
		const shown = await waitFor(
			async () => {
				const list = await page.evaluate(async () =>
					(await (await navigator.serviceWorker.ready).getNotifications()).map((n) => ({ title: n.title, body: n.body, tag: n.tag, data: n.data }))
				);
				return list.length ? list : null;
			},
			{ what: 'the notification' }
		);
		assert.deepEqual(shown, [{ title: 'pushy', body: fixture.body, tag: payload.tag, data: { url: payload.url, session_id: sessionId, kind: 'turn_end' } }]);

		// A push that is not ours still shows (browsers require one), plainly.
		await cdp.send('ServiceWorker.deliverPushMessage', { origin: stack.base, registrationId: reg.registrationId, data: 'not json' });
		await waitFor(
			async () => (await page.evaluate(async () => (await (await navigator.serviceWorker.ready).getNotifications()).map((n) => n.title))).includes('piface') || null,
			{ what: 'the plain notification' }
		);

		// The dashboard's menu: permission granted, not subscribed yet, the key is served.
		await page.goto(`${stack.base}/`);
		await page.locator('summary[aria-label="Notifications"]').click();
		const menu = page.getByRole('group', { name: 'Notifications on this device' });
		await menu.getByRole('button', { name: 'Turn on notifications' }).waitFor();
		const box = await menu.boundingBox();
		assert.ok(box && box.x >= 0 && box.x + box.width <= PHONE.viewport.width + 0.5, `the menu fits 375 px: ${JSON.stringify(box)}`);
		await page.screenshot({ path: screenshotPath('phone-notifications-menu') });
		const key = await page.evaluate(() => fetch('/api/push/key').then((r) => r.json()));
		assert.match(key.public_key, /^B[A-Za-z0-9_-]{86}$/, 'an uncompressed P-256 point, base64url');
		foreignRequests.push(...foreign);
		await context.close();
	});
});
