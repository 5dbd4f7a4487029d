// The phone experience (issue 21) in Chromium at 375 px, against piface, real pi and the fake LLM: the
// installable app (manifest, icons, service worker; a reload with the coordinator stopped shows the cached shell
// saying "reconnecting" and recovers when it is back), the session header fitting the screen, the Mic/Listen
// tooltips, the names Branch and New from defaults pre-fill, !cmd echoed, slash commands refusing attachments,
// the terminal's sticky Ctrl and | ~ - / keys, and the Files tab's Ruby highlighting and copy menu.
// The coordinator is reached through a TCP forwarder on a port of our own, so "stopped" is a refused
// connection on the same origin. PIFACE_E2E_FRESH_UI=1 (or PIFACE_E2E_UI_DIR=<build>) serves a fresh build.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { createServer, connect } from 'node:net';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freshUiProxy, guardedContext, http, launchBrowser, screenshotPath, startStack, waitFor } from './harness.mjs';

let stack;
let browser;
let proxy = null;
let door;
let base;
let sessionId;
const pageErrors = [];
const foreignRequests = [];
const PHONE = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

/** A TCP forwarder to `target` that can be closed (connections refused, open ones cut) and opened again on the
 * same port: the coordinator as the browser sees it when it stops and comes back. */
async function forwarder(target) {
	const t = new URL(target);
	const open = new Set();
	let server = null;
	let port = 0;
	const listen = () =>
		new Promise((r) => {
			server = createServer((c) => {
				const up = connect(Number(t.port), t.hostname);
				open.add(c);
				open.add(up);
				c.pipe(up).pipe(c);
				const end = () => {
					c.destroy();
					up.destroy();
					open.delete(c);
					open.delete(up);
				};
				c.on('error', end).on('close', end);
				up.on('error', end).on('close', end);
			});
			server.listen(port, '127.0.0.1', () => {
				port = server.address().port;
				r();
			});
		});
	await listen();
	return {
		get url() {
			return `http://127.0.0.1:${port}`;
		},
		stop: () =>
			new Promise((r) => {
				for (const s of open) s.destroy();
				open.clear();
				server.close(() => r());
			}),
		start: listen
	};
}

async function newPage(options = PHONE) {
	const { context, foreign } = await guardedContext(browser, options, { login: stack });
	const page = await context.newPage();
	page.on('pageerror', (e) => pageErrors.push(String(e)));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/WebSocket|Failed to load resource|ERR_CONNECTION_REFUSED|ERR_INTERNET_DISCONNECTED|ERR_FAILED|Could not reach/.test(m.text())) pageErrors.push(m.text());
	});
	return { context, page, foreign };
}

async function closeContext(ctx) {
	foreignRequests.push(...ctx.foreign);
	await ctx.context.close();
}

async function fitsScreen(locator, what) {
	const box = await locator.boundingBox();
	assert.ok(box, `${what} is shown`);
	assert.ok(box.x >= 0 && box.x + box.width <= PHONE.viewport.width + 0.5, `${what} lies within 375 px (x ${box.x}, width ${box.width})`);
}

describe('the phone experience', { timeout: 300_000 }, () => {
	before(async () => {
		stack = await startStack(({ project }) => {
			writeFileSync(join(project, 'app.rb'), 'class Greeter\n  def greet(name)\n    puts "hi #{name}"\n  end\nend\n');
		});
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		proxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(stack.base, uiDir || undefined) : null;
		door = await forwarder(proxy?.url ?? stack.base);
		base = door.url;
		browser = await launchBrowser(stack.bins);
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: stack.project, provider: 'fake', model: 'fake-model', session_name: 'phone', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		sessionId = created.json.piface_id;
	});

	after(async () => {
		await browser?.close();
		await door?.stop().catch(() => {});
		await Promise.race([proxy?.close(), new Promise((r) => setTimeout(r, 3000))]);
		await stack?.stop();
		assert.deepEqual(foreignRequests, [], 'no request left piface and no CSP violation');
		assert.deepEqual(pageErrors, [], 'no page errors');
	});

	test('installable: manifest and icons load, the service worker installs, the cached shell says reconnecting while piface is stopped', async () => {
		const ctx = await newPage();
		const { page } = ctx;
		await page.goto(base + '/');
		await page.getByRole('button', { name: '+ New Session' }).waitFor();
		const manifestHref = await page.locator('link[rel=manifest]').getAttribute('href');
		const manifest = await page.evaluate(async (href) => {
			const res = await fetch(href);
			return { type: res.headers.get('content-type'), body: await res.json() };
		}, manifestHref);
		assert.match(manifest.type, /^application\/manifest\+json/);
		assert.equal(manifest.body.display, 'standalone');
		assert.match(manifest.body.theme_color, /^#[0-9a-f]{6}$/i);
		for (const icon of manifest.body.icons) {
			const got = await page.evaluate(async (src) => {
				const res = await fetch(src);
				const img = new Image();
				img.src = URL.createObjectURL(await res.blob());
				await img.decode();
				return { status: res.status, type: res.headers.get('content-type'), w: img.naturalWidth };
			}, icon.src);
			assert.equal(got.status, 200, icon.src);
			assert.equal(got.type.split(';')[0], icon.type, icon.src);
			if (icon.sizes !== 'any') assert.equal(`${got.w}x${got.w}`, icon.sizes, icon.src);
		}
		for (const name of ['apple-mobile-web-app-capable', 'apple-mobile-web-app-title', 'theme-color']) {
			assert.equal(await page.locator(`meta[name="${name}"]`).count(), 1, name);
		}
		assert.equal(await page.locator('link[rel=apple-touch-icon]').count(), 1);

		// The worker installs, controls the page, and holds only the shell and hashed assets.
		await page.evaluate(() => navigator.serviceWorker.ready.then(() => undefined));
		await page.reload();
		await page.getByRole('button', { name: '+ New Session' }).waitFor();
		assert.equal(await page.evaluate(() => !!navigator.serviceWorker.controller), true, 'the worker controls the page');
		const cached = await page.evaluate(async () => {
			const names = await caches.keys();
			const urls = [];
			for (const n of names) for (const r of await (await caches.open(n)).keys()) urls.push(new URL(r.url).pathname);
			return { names, urls };
		});
		assert.equal(cached.names.length, 1);
		assert.match(cached.names[0], /^piface-shell-/);
		assert.ok(cached.urls.includes('/'), 'the shell is cached');
		assert.ok(cached.urls.some((u) => u.startsWith('/_app/immutable/')), 'hashed assets are cached');
		assert.deepEqual(cached.urls.filter((u) => u.startsWith('/api/') || u.startsWith('/ws/')), [], 'no API response is cached');

		// The coordinator stops: a reload shows the app's own "reconnecting", not a browser error page.
		await door.stop();
		await page.reload();
		await page.getByRole('status').filter({ hasText: 'Reconnecting to piface…' }).waitFor();
		await page.screenshot({ path: screenshotPath('phone-reconnecting') });
		// Back: the app opens by itself.
		await door.start();
		await page.getByRole('button', { name: '+ New Session' }).waitFor({ timeout: 30_000 });
		await closeContext(ctx);
	});

	test('session view at 375 px: header fits, tooltips, names, !cmd echo, commands refuse attachments', async () => {
		const ctx = await newPage();
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}`);
		await page.locator('.badge.conn-open').waitFor();
		await fitsScreen(page.locator('label.check', { hasText: 'Render Markdown' }), 'Render Markdown');
		await fitsScreen(page.getByLabel('Thinking'), 'the Thinking control');
		await page.screenshot({ path: screenshotPath('phone-session-header') });
		assert.match(await page.getByRole('button', { name: 'Mic → Text' }).getAttribute('title'), /To turn it on, .*--speech/);

		const box = page.getByRole('textbox', { name: 'Message', exact: true });
		await box.fill('hello phone');
		await box.press('Enter');
		await page.locator('.msg.assistant', { hasText: 'echo: hello phone' }).waitFor();
		const listen = page.locator('.msg.assistant', { hasText: 'echo: hello phone' }).getByRole('button', { name: 'Listen' });
		assert.match(await listen.getAttribute('title'), /To turn it on, .*--tts/);
		await waitFor(async () => (await http(stack.base, 'GET', `/api/sessions/${sessionId}`)).json.session_file, { what: 'session file' });

		// !cmd shows as the user's bubble.
		await box.fill('!echo bang-echo');
		await box.press('Enter');
		await page.locator('.msg.user', { hasText: '!echo bang-echo' }).waitFor();

		// /compact with an attachment pending: refused with a notice, the attachment kept.
		await page.locator('input[type=file]').setInputFiles({ name: 'note.txt', mimeType: 'text/plain', buffer: Buffer.from('x\n') });
		const chip = page.getByRole('list', { name: 'Attachments' }).locator('.chip-done');
		await chip.waitFor();
		await box.fill('/compact');
		await box.press('Enter');
		const alert = page.locator('.inline-error');
		await alert.waitFor();
		assert.match(await alert.innerText(), /\/compact does not take attachments/);
		assert.equal(await chip.count(), 1, 'the attachment is kept');
		await page.getByRole('button', { name: 'Remove note.txt' }).click();

		// Names: New from defaults and Branch pre-fill '<name> copy' and '<name> branch'.
		await page.getByRole('button', { name: 'New from defaults' }).click();
		assert.equal(await page.getByLabel('Session name (optional)').inputValue(), 'phone copy');
		await page.getByRole('button', { name: 'Cancel' }).click();
		await page.getByRole('button', { name: 'Branch', exact: true }).click();
		assert.equal(await page.getByLabel('New session name').inputValue(), 'phone branch');
		await page.getByRole('button', { name: 'Cancel' }).click();
		await closeContext(ctx);
	});

	test('terminal keys: sticky Ctrl turns the next key into its control character; | ~ - / are there', async () => {
		const ctx = await newPage();
		const { page } = ctx;
		const sent = [];
		page.on('websocket', (ws) => {
			if (!ws.url().endsWith('/terminal')) return;
			ws.on('framesent', (f) => sent.push(typeof f.payload === 'string' ? f.payload : Buffer.from(f.payload).toString('latin1')));
		});
		await page.goto(`${base}/session/${sessionId}?tab=terminal`);
		await page.locator('.term-bar .state-open').waitFor({ timeout: 20_000 });
		const bar = page.getByRole('toolbar', { name: 'Terminal keys' });
		assert.deepEqual(await bar.getByRole('button').allInnerTexts(), ['Esc', 'Tab', 'Ctrl', '^C', '^D', '↑', '↓', '←', '→', '|', '~', '-', '/']);
		const ctrl = bar.getByRole('button', { name: 'Ctrl', exact: true });
		await ctrl.click();
		assert.equal(await ctrl.getAttribute('aria-pressed'), 'true');
		await page.keyboard.type('l');
		await waitFor(async () => sent.some((s) => s.includes('\x0c')), { what: 'Ctrl-L sent' });
		assert.equal(await ctrl.getAttribute('aria-pressed'), 'false', 'Ctrl is spent by one key');
		await bar.getByRole('button', { name: 'Pipe' }).click();
		await waitFor(async () => sent.some((s) => s.includes('|')), { what: '| sent' });
		await page.screenshot({ path: screenshotPath('phone-terminal-keys') });
		await closeContext(ctx);
	});

	test('Files: Ruby is highlighted; the copy menu copies the relative and absolute path', async () => {
		const ctx = await newPage();
		const { page, context } = ctx;
		await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
		await page.goto(`${base}/session/${sessionId}?tab=files`);
		await page.locator('button.entry', { hasText: 'app.rb' }).click();
		await page.locator('.code-view code.language-ruby .hljs-keyword').first().waitFor();
		await page.getByRole('button', { name: 'More ways to copy' }).click();
		await page.getByRole('menuitem', { name: 'Copy relative path' }).click();
		await waitFor(async () => (await page.evaluate(() => navigator.clipboard.readText())) === 'app.rb', { what: 'relative path copied' });
		await page.getByRole('button', { name: 'More ways to copy' }).click();
		await page.getByRole('menuitem', { name: 'Copy absolute path' }).click();
		await waitFor(async () => (await page.evaluate(() => navigator.clipboard.readText())) === join(stack.project, 'app.rb'), { what: 'absolute path copied' });
		await page.screenshot({ path: screenshotPath('phone-files-ruby') });
		await closeContext(ctx);
	});
});
