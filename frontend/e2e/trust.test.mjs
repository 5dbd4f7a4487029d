// Workspace trust in Chromium at phone size, against piface, real pi and the fake LLM: a repository whose
// committed `.piface/workspace.toml` has a `[launch]` (for pi and the terminal) runs nothing when a session
// is created there; the form shows the commands and the hash, Cancel keeps the refusal, "Trust and continue"
// trusts exactly that content and creates the session (the launch script ran). After the file changes, the
// Terminal tab meets the refusal (close 4409), asks again saying the file changed, and connects once trusted.
// PIFACE_E2E_FRESH_UI=1 (or PIFACE_E2E_UI_DIR=<build>) serves a fresh `npm run build`.

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
import { appendFileSync, existsSync, mkdirSync, readFileSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freshUiProxy, guardedContext, http, launchBrowser, screenshotPath, startStack, waitFor } from './harness.mjs';

let stack;
let browser;
let proxy = null;
let base;
let repo;
let launchMarker;
let bootstrapMarker;
let sessionId;
const pageErrors = [];
const foreignRequests = [];
const PHONE = { viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 };

function git(dir, ...args) {
	const env = { ...process.env, GIT_AUTHOR_NAME: 't', GIT_AUTHOR_EMAIL: 't@t', GIT_COMMITTER_NAME: 't', GIT_COMMITTER_EMAIL: 't@t' };
	execFileSync('git', args, { cwd: dir, env, stdio: 'ignore' });
}

/** A cloned-looking repository whose committed workspace file would touch marker files. */
function seed({ root, home }) {
	repo = join(home, 'hostile');
	launchMarker = join(root, 'launch-ran');
	bootstrapMarker = join(root, 'bootstrap-ran');
	mkdirSync(join(repo, '.piface'), { recursive: true });
	writeFileSync(join(repo, 'README.md'), '# looks harmless\n');
	writeFileSync(
		join(repo, '.piface/workspace.toml'),
		`version = 1\n[bootstrap]\nscript = "touch ${bootstrapMarker}"\n[launch]\nscript = "touch ${launchMarker}"\napply_to = ["pi", "pty"]\n`
	);
	git(repo, 'init', '-q');
	git(repo, 'add', '.');
	git(repo, 'commit', '-qm', 'init');
}

const sha256 = (path) => createHash('sha256').update(readFileSync(path)).digest('hex');

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

/** Fits 375 px: no horizontal overflow, and the mobile browser did not widen its layout viewport (it zooms
 * out to show content that is too wide, which `scrollWidth` alone does not reveal). */
async function noHorizontalOverflow(page, what) {
	const { overflow, width } = await page.evaluate(() => ({ overflow: document.documentElement.scrollWidth - window.innerWidth, width: window.innerWidth }));
	assert.ok(overflow <= 0, `${what} fits the viewport (overflow ${overflow}px)`);
	assert.equal(width, PHONE.viewport.width, `${what} keeps the layout viewport at phone width`);
}

describe('workspace trust in the UI', { timeout: 300_000 }, () => {
	before(async () => {
		stack = await startStack(seed);
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		proxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(stack.base, uiDir || undefined) : null;
		base = proxy?.url ?? stack.base;
		browser = await launchBrowser(stack.bins);
	});

	after(async () => {
		await browser?.close();
		await Promise.race([proxy?.close(), new Promise((r) => setTimeout(r, 3000))]);
		await stack?.stop();
	});

	test('New Session in a repository with workspace commands: shown, refused on Cancel, run once trusted', async () => {
		const ctx = await newPage(PHONE);
		const { page } = ctx;
		const posts = [];
		page.on('response', (r) => r.request().method() === 'POST' && posts.push([new URL(r.url()).pathname, r.status()]));
		await page.goto(base + '/');
		await page.getByRole('button', { name: '+ New Session' }).click();
		await page.locator('#ns-dir').fill(repo);
		await waitFor(async () => (await page.getByLabel('Model').inputValue()) === 'fake-model', { what: 'model list' });
		await page.getByRole('button', { name: 'Create Session' }).click();

		const dialog = page.getByRole('dialog', { name: "Trust this workspace's commands?" });
		await dialog.waitFor();
		const text = await dialog.innerText();
		assert.match(text, new RegExp(`touch ${launchMarker.replace(/[.*+?^${}()|[\]\\/]/g, '\\$&')}`), 'the launch script is shown');
		assert.match(text, /\[bootstrap\]/);
		assert.match(text, /\[launch\]/);
		assert.ok(text.includes(sha256(join(repo, '.piface/workspace.toml'))), 'the hash to be trusted is shown');
		assert.deepEqual(posts, [['/api/sessions', 409]], 'the server refused; nothing was trusted');
		assert.equal(existsSync(launchMarker) || existsSync(bootstrapMarker), false, 'no workspace command ran');
		await noHorizontalOverflow(page, 'the trust dialog');
		const hidden = await dialog.locator('.script').evaluateAll((els) => els.filter((e) => e.scrollWidth > e.clientWidth).length);
		assert.equal(hidden, 0, 'every command is shown whole, wrapped rather than scrolled sideways');
		await page.screenshot({ path: screenshotPath('trust-phone-dialog') });

		// Cancel: the refusal stays, in the form, and still nothing ran.
		await dialog.getByRole('button', { name: 'Cancel' }).click();
		const error = page.locator('.new-session').getByRole('alert');
		await error.waitFor();
		assert.match(await error.innerText(), /^Workspace not trusted/);
		await page.screenshot({ path: screenshotPath('trust-phone-refused') });
		await noHorizontalOverflow(page, 'the refusal in the form');
		assert.equal(existsSync(launchMarker), false);
		const info = await http(stack.base, 'GET', `/api/workspace/trust?path=${encodeURIComponent(repo)}`);
		assert.equal(info.json.trusted, false);

		// Trust and continue: exactly that content is trusted, the session is created, the launch ran before pi.
		await page.getByRole('button', { name: 'Create Session' }).click();
		await dialog.waitFor();
		await dialog.getByRole('button', { name: 'Trust and continue' }).click();
		await page.waitForURL(/\/session\//);
		sessionId = decodeURIComponent(new URL(page.url()).pathname.split('/').pop());
		assert.deepEqual(
			posts.map(([p, s]) => `${p} ${s}`),
			['/api/sessions 409', '/api/sessions 409', '/api/workspace/trust 200', '/api/sessions 201']
		);
		assert.equal(existsSync(launchMarker), true, 'the launch script ran once trusted');
		assert.equal(existsSync(bootstrapMarker), false, 'bootstrap runs for new worktrees only (the form makes shared sessions)');
		const trusted = await http(stack.base, 'GET', `/api/workspace/trust?path=${encodeURIComponent(repo)}`);
		assert.equal(trusted.json.trusted_sha256, sha256(join(repo, '.piface/workspace.toml')));
		await closeContext(ctx);
	});

	test('Terminal after the file changed: refused (4409), asked again, connected once trusted', async () => {
		assert.ok(sessionId, 'the previous test created the session');
		appendFileSync(join(repo, '.piface/workspace.toml'), '# changed after it was trusted\n');
		rmSync(launchMarker);
		const ctx = await newPage(PHONE);
		const { page } = ctx;
		const closes = [];
		page.on('websocket', (ws) => ws.on('close', () => closes.push(ws.url())));
		await page.goto(`${base}/session/${encodeURIComponent(sessionId)}?tab=terminal`);
		const dialog = page.getByRole('dialog', { name: "Trust this workspace's commands?" });
		await dialog.waitFor({ timeout: 20_000 });
		assert.match(await dialog.innerText(), /The file changed since you last trusted it\./);
		assert.equal(existsSync(launchMarker), false, 'the terminal ran nothing');
		await page.locator('.term-bar .state-untrusted').waitFor();
		await noHorizontalOverflow(page, 'the trust dialog over the terminal');
		await page.screenshot({ path: screenshotPath('trust-phone-terminal') });
		await dialog.getByRole('button', { name: 'Trust and continue' }).click();
		await page.locator('.term-bar .state-open').waitFor({ timeout: 20_000 });
		await waitFor(() => existsSync(launchMarker), { what: "the terminal's launch script" });
		assert.ok(closes.some((u) => u.endsWith('/terminal')), 'the first terminal socket was closed by the server');
		await closeContext(ctx);
	});

	test('nothing was requested outside the origin, no CSP violation, no page error', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});
