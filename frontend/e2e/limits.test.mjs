// The server's limits where the UI meets them, in Chromium against piface started with low ones: a session
// past `--max-sessions-per-agent` is refused in the new-session form with the server's words, and a prompt
// past `--max-ws-message-mib` makes the server close the chat socket, which the session view explains before
// it reconnects. PIFACE_E2E_FRESH_UI=1 (or PIFACE_E2E_UI_DIR=<build>) serves a fresh `npm run build`.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freshUiProxy, guardedContext, http, launchBrowser, screenshotPath, startStack, waitFor } from './harness.mjs';

let stack;
let browser;
let proxy = null;
let base;
let sessionId;
const pageErrors = [];
const foreignRequests = [];

async function newPage(options = {}) {
	const { context, foreign } = await guardedContext(browser, options, { login: stack });
	const page = await context.newPage();
	page.on('pageerror', (e) => pageErrors.push(String(e)));
	page.on('console', (m) => {
		if (m.type() === 'error' && !/WebSocket|Failed to load resource|ERR_INTERNET_DISCONNECTED/.test(m.text())) pageErrors.push(m.text());
	});
	return { context, page, foreign };
}

async function closeContext(ctx) {
	foreignRequests.push(...ctx.foreign);
	await ctx.context.close();
}

describe('limits in the UI', { timeout: 300_000 }, () => {
	before(async () => {
		stack = await startStack(undefined, { serverArgs: ['--max-sessions-per-agent', '1', '--max-ws-message-mib', '1'] });
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		proxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(stack.base, uiDir || undefined) : null;
		base = proxy?.url ?? stack.base;
		browser = await launchBrowser(stack.bins);
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: stack.project, provider: 'fake', model: 'fake-model', session_name: 'the only one', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		sessionId = created.json.piface_id;
	});

	after(async () => {
		await browser?.close();
		await Promise.race([proxy?.close(), new Promise((r) => setTimeout(r, 3000))]);
		await stack?.stop();
	});

	test('a session past the per-agent limit is refused in the form with the server detail', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 860 } });
		const { page } = ctx;
		const posts = [];
		page.on('response', (r) => r.request().method() === 'POST' && posts.push([new URL(r.url()).pathname, r.status()]));
		await page.goto(base + '/');
		await page.getByRole('button', { name: '+ New Session' }).click();
		await page.locator('#ns-dir').fill(stack.project);
		await waitFor(async () => (await page.getByLabel('Model').inputValue()) === 'fake-model', { what: 'model list' });
		await page.getByRole('button', { name: 'Create Session' }).click();
		const error = page.locator('.new-session').getByRole('alert');
		await error.waitFor();
		assert.deepEqual(posts, [['/api/sessions', 429]]);
		const refused = await http(stack.base, 'POST', '/api/sessions', { working_dir: stack.project, shared: true });
		assert.equal(refused.status, 429);
		assert.ok(refused.json.detail.length > 10, `a detail worth showing: ${JSON.stringify(refused.json)}`);
		assert.equal((await error.innerText()).trim(), refused.json.detail, 'the form shows the server detail');
		assert.equal(new URL(page.url()).pathname, '/', 'still on the dashboard');
		await page.screenshot({ path: screenshotPath('limit-sessions-per-agent') });
		await closeContext(ctx);
	});

	test('a prompt over the message limit: the view says why the server closed the socket, then reconnects', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 860 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}`);
		await page.locator('.badge.conn-open').waitFor();
		const box = page.getByRole('textbox', { name: 'Message', exact: true });
		await box.fill('x'.repeat((1 << 20) + 1000));
		await box.press('Enter');
		const error = page.locator('.inline-error');
		await error.waitFor();
		assert.match(await error.innerText(), /^The server closed the connection: .+/);
		await page.locator('.badge.conn-open').waitFor({ timeout: 20_000 });
		// The session is still usable.
		await box.fill('still here');
		await box.press('Enter');
		await page.locator('.msg.assistant:not(.live)', { hasText: 'echo: still here' }).waitFor();
		assert.equal((await http(stack.base, 'GET', '/api/health')).status, 200);
		await page.screenshot({ path: screenshotPath('limit-ws-message') });
		await closeContext(ctx);
	});

	test('nothing was requested outside the origin, no CSP violation, no page error', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});
