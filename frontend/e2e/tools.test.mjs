// End-to-end tests of the session's tool tabs (Files, Diff, Terminal, Scratch) and of attachments, in Debian's
// chromium against the real piface, pi and fake LLM. The session runs in a fixture git repository with a
// modified, a staged, a renamed, a deleted and an untracked file, a Markdown file with a relative image, an
// image and an HTML page. Screenshots go to frontend/test-output/ (`tools-*`). Every request to another host
// fails the run, as in ui.test.mjs.
//
// The binary embeds the UI it was built with; to test a fresh `npm run build` without rebuilding piface, set
// PIFACE_E2E_FRESH_UI=1 (serves frontend/build) or PIFACE_E2E_UI_DIR=<a build folder>: pages then come from a
// loopback proxy that forwards the API to piface (harness.mjs `freshUiProxy`).

import assert from 'node:assert/strict';
import { execFileSync } from 'node:child_process';
import { mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { authHeaders, freshUiProxy, guardedContext, http, launchBrowser, screenshotPath, startStack, waitFor } from './harness.mjs';

/** A 4×4 PNG (red and blue stripes). */
const PNG = Buffer.from('iVBORw0KGgoAAAANSUhEUgAAAAQAAAAECAIAAAAmkwkpAAAAFElEQVR4nGP4z8DA0PAfQjIQxwEAALIT8Y45GjQAAAAASUVORK5CYII=', 'base64');

const SKINS = ['default', 'beos', 'facebook2007', 'nintendo', 'nintendo-nes', 'windows98', 'macos8', 'winamp', 'protoss', 'terran', 'zerg', 'synthwave'];

let stack;
let browser;
let proxy = null;
let base;
let repo;
let sessionId;
const foreignRequests = [];
const pageErrors = [];

/** The fixture repository: one commit, then changes of every kind git status reports. */
function makeRepo(dir) {
	const git = (...args) => execFileSync('git', ['-c', 'user.email=e2e@piface.test', '-c', 'user.name=e2e', '-c', 'init.defaultBranch=main', ...args], { cwd: dir, stdio: 'pipe' });
	mkdirSync(join(dir, 'src'), { recursive: true });
	mkdirSync(join(dir, 'img'));
	mkdirSync(join(dir, 'docs'));
	writeFileSync(join(dir, 'README.md'), '# Fixture project\n\n![logo](img/logo.png)\n\nSee [the notes](docs/notes.md) and $E = mc^2$.\n\n```rust\nfn main() {}\n```\n');
	writeFileSync(join(dir, 'docs/notes.md'), '# Notes\n\nBack to [the readme](../README.md).\n');
	writeFileSync(join(dir, 'img/logo.png'), PNG);
	writeFileSync(join(dir, 'page.html'), '<!doctype html><title>page</title><h1 id="greeting">Hello from HTML</h1><script>document.title = "ran"</script>\n');
	writeFileSync(join(dir, 'src/main.rs'), 'fn main() {\n    let answer = 41;\n    println!("{answer}");\n}\n');
	writeFileSync(join(dir, 'staged.txt'), 'one\ntwo\n');
	writeFileSync(join(dir, 'deleted.txt'), 'going away\n');
	writeFileSync(join(dir, 'old-name.txt'), 'a file that gets renamed\nwith two lines\n');
	git('init', '-q');
	git('add', '-A');
	git('commit', '-qm', 'fixture');
	writeFileSync(join(dir, 'src/main.rs'), 'fn main() {\n    let answer = 42;\n    println!("{answer}");\n}\n');
	writeFileSync(join(dir, 'staged.txt'), 'one\ntwo\nthree\n');
	git('add', 'staged.txt');
	git('mv', 'old-name.txt', 'new-name.txt');
	rmSync(join(dir, 'deleted.txt'));
	writeFileSync(join(dir, 'untracked.txt'), 'brand new\n');
	// Over the 512 KiB preview limit (413), under the 8 MiB raw limit.
	writeFileSync(join(dir, 'big.txt'), 'big line\n'.repeat(70 * 1024));
}

async function newPage(options = {}) {
	const { context, foreign } = await guardedContext(browser, options, { login: stack });
	const page = await context.newPage();
	page.on('pageerror', (e) => pageErrors.push(String(e)));
	page.on('console', (m) => {
		// The HTML preview's script being blocked is the sandbox doing its job.
		if (m.type() === 'error' && !/WebSocket|Failed to load resource|ERR_INTERNET_DISCONNECTED|Blocked script execution .* sandboxed/.test(m.text())) pageErrors.push(m.text());
	});
	return { context, page, foreign };
}

async function closeContext(ctx) {
	foreignRequests.push(...ctx.foreign);
	await ctx.context.close();
}

async function setLook(page, mode, skin = 'default') {
	await page.evaluate(
		([m, s]) => {
			localStorage.setItem('piface.theme.mode', m);
			localStorage.setItem('piface.theme.skin', s);
		},
		[mode, skin]
	);
}

async function noHorizontalOverflow(page, what) {
	const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
	assert.ok(overflow <= 0, `${what} fits the viewport (overflow ${overflow}px)`);
}

describe('session tools', { timeout: 600_000 }, () => {
	before(async () => {
		stack = await startStack();
		browser = await launchBrowser(stack.bins);
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		proxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(stack.base, uiDir || undefined) : null;
		base = proxy?.url ?? stack.base;
		// Inside HOME: the agent's file roots default to the user's home.
		repo = join(stack.home, 'repo');
		makeRepo(repo);
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: repo, provider: 'fake', model: 'fake-model', session_name: 'tools', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		sessionId = created.json.piface_id;
	});

	after(async () => {
		// The browser first: a test that failed half-way leaves its page (and its WebSockets through the
		// proxy) open, and the proxy cannot close while they are.
		await browser?.close();
		await Promise.race([proxy?.close(), new Promise((r) => setTimeout(r, 3000))]);
		await stack?.stop();
	});

	test('Files: listing, Markdown with a relative image, code, image, sandboxed HTML, fullscreen, copy, errors', async () => {
		const ctx = await newPage({ viewport: { width: 1280, height: 860 } });
		const { page, context } = ctx;
		await context.grantPermissions(['clipboard-read', 'clipboard-write'], { origin: base });
		await page.goto(`${base}/session/${sessionId}?tab=files`);
		await setLook(page, 'light');
		await page.reload();
		const list = page.getByRole('list', { name: 'Contents of repo' });
		await list.getByRole('button', { name: 'README.md' }).waitFor();
		const names = await list.locator('.entry .name').allInnerTexts();
		assert.deepEqual(names.slice(0, 4), ['.git/', 'docs/', 'img/', 'src/'], 'directories first');
		assert.ok(names.includes('untracked.txt') && names.includes('page.html'));

		// Markdown: rendered, math typeset, the relative image served by fs/raw from the file's directory.
		await list.getByRole('button', { name: 'README.md' }).click();
		const md = page.locator('.file-markdown');
		await md.locator('h1', { hasText: 'Fixture project' }).waitFor();
		await md.locator('span.math svg').waitFor();
		const img = md.locator('img[alt="logo"]');
		assert.match(await img.getAttribute('src'), /^\/api\/fs\/raw\?path=%2F.*%2Frepo%2Fimg%2Flogo\.png/);
		await waitFor(() => img.evaluate((el) => el.complete && el.naturalWidth === 4), { what: 'the Markdown image to load' });
		// A relative link to another Markdown file opens it in place.
		await md.getByRole('link', { name: 'the notes' }).click();
		await page.locator('.file-markdown h1', { hasText: 'Notes' }).waitFor();
		await page.screenshot({ path: screenshotPath('tools-files-markdown') });

		// Code: highlighted, with "Copy source".
		await list.getByRole('button', { name: 'src/' }).click();
		await page.getByRole('list', { name: 'Contents of src' }).getByRole('button', { name: 'main.rs' }).click();
		await page.locator('.code-view code.hljs .hljs-keyword').first().waitFor();
		await page.getByRole('button', { name: 'Copy source' }).click();
		await page.getByRole('button', { name: 'Copied' }).waitFor();
		assert.match(await page.evaluate(() => navigator.clipboard.readText()), /let answer = 42;/);
		await page.screenshot({ path: screenshotPath('tools-files-code') });

		// Back up; an image and an HTML page in a sandboxed frame.
		await page.getByRole('button', { name: 'Up one directory' }).click();
		await page.getByRole('list', { name: 'Contents of repo' }).getByRole('button', { name: 'img/' }).click();
		await page.getByRole('list', { name: 'Contents of img' }).getByRole('button', { name: 'logo.png' }).click();
		await waitFor(() => page.locator('.preview img').evaluate((el) => el.naturalWidth === 4), { what: 'the image preview' });
		await page.locator('figcaption', { hasText: '4 × 4' }).waitFor();
		await page.getByRole('button', { name: 'repo', exact: true }).click();
		await page.getByRole('list', { name: 'Contents of repo' }).getByRole('button', { name: 'page.html' }).click();
		const frame = page.locator('iframe.html');
		await frame.waitFor();
		assert.equal(await frame.getAttribute('sandbox'), '', 'no scripts, no same origin');
		await page.frameLocator('iframe.html').locator('#greeting', { hasText: 'Hello from HTML' }).waitFor();
		assert.notEqual(await page.frameLocator('iframe.html').locator('title').textContent(), 'ran');

		// Fullscreen hides the browser pane and survives a reload, as does the selected file.
		await page.getByRole('button', { name: 'Fullscreen' }).click();
		assert.equal(await page.locator('section.browser').isVisible(), false);
		await page.reload();
		await page.frameLocator('iframe.html').locator('#greeting').waitFor();
		assert.equal(await page.locator('section.browser').isVisible(), false);
		await page.getByRole('button', { name: 'Exit fullscreen' }).click();
		await page.locator('section.browser').waitFor();
		await page.getByText('Recent files (').waitFor();

		// A file too large to preview says so and offers the raw file.
		await page.getByRole('list', { name: 'Contents of repo' }).getByRole('button', { name: 'big.txt' }).click();
		const tooLarge = page.locator('.pane-message');
		await tooLarge.getByText(/too large to preview/).waitFor();
		const raw = await tooLarge.getByRole('link', { name: 'Open raw' }).getAttribute('href');
		assert.equal((await fetch(stack.base + raw, { headers: authHeaders(stack.base) })).status, 200);

		// Climbing above HOME (the agent's file root) is refused with a clear message.
		await page.getByRole('button', { name: 'Up one directory' }).click();
		await page.getByRole('list', { name: /Contents of home/ }).waitFor();
		await page.getByRole('button', { name: 'Up one directory' }).click();
		await page.locator('.list-error', { hasText: 'Not allowed' }).waitFor();
		await page.getByRole('button', { name: 'Back to the session directory' }).click();
		await page.getByRole('list', { name: 'Contents of repo' }).waitFor();
		await closeContext(ctx);
	});

	test('Diff: status badges, side-by-side and unified diffs, staged toggle, untracked, rename, not a repo', async () => {
		const ctx = await newPage({ viewport: { width: 1280, height: 860 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}?tab=diff`);
		await setLook(page, 'light');
		await page.reload();
		const files = page.getByRole('region', { name: 'Changed files' });
		const row = (path) => files.locator('button.file', { hasText: path });
		await row('src/main.rs').waitFor();
		assert.match(await files.innerText(), /⎇\s*main/);
		assert.equal(await row('src/main.rs').locator('.code').innerText(), '·M');
		assert.deepEqual(await row('src/main.rs').locator('.gbadge').allInnerTexts(), ['unstaged']);
		assert.deepEqual(await row('staged.txt').locator('.gbadge').allInnerTexts(), ['staged']);
		assert.deepEqual(await row('untracked.txt').locator('.gbadge').allInnerTexts(), ['untracked']);
		assert.match(await row('new-name.txt').innerText(), /old-name\.txt →/);
		assert.equal(await row('deleted.txt').locator('.code').innerText(), '·D');

		// An unstaged change, side by side, with the changed characters marked.
		await row('src/main.rs').click();
		const pane = page.getByRole('region', { name: 'Diff' });
		await pane.locator('table.split td.code.del', { hasText: 'let answer = 41;' }).waitFor();
		assert.equal(await pane.locator('table.split td.code.add mark').innerText(), '2');
		assert.equal(await pane.getByRole('button', { name: 'Unstaged', exact: true }).getAttribute('aria-pressed'), 'true');
		assert.equal(await pane.getByRole('button', { name: 'Staged', exact: true }).isDisabled(), true);
		await page.screenshot({ path: screenshotPath('tools-diff-split') });
		await pane.getByRole('button', { name: 'Unified' }).click();
		await pane.locator('table.unified tr.add', { hasText: 'let answer = 42;' }).waitFor();
		await pane.getByRole('button', { name: 'Side by side' }).click();

		// A staged-only file opens on its staged side.
		await row('staged.txt').click();
		await pane.locator('td.code.add', { hasText: 'three' }).waitFor();
		assert.equal(await pane.getByRole('button', { name: 'Staged', exact: true }).getAttribute('aria-pressed'), 'true');
		// Untracked: all added; deleted: all removed; renamed: shown as a rename.
		await row('untracked.txt').click();
		await pane.locator('.chip.change-added').waitFor();
		await pane.locator('td.code.add', { hasText: 'brand new' }).waitFor();
		await row('deleted.txt').click();
		await pane.locator('td.code.del', { hasText: 'going away' }).waitFor();
		// A staged rename diffs against its old path, so it shows as a rename (old → new).
		await row('new-name.txt').click();
		await pane.locator('.file-path', { hasText: 'old-name.txt → new-name.txt' }).waitFor();
		await pane.locator('.chip.change-renamed').waitFor();

		// Refresh picks up a new change.
		writeFileSync(join(repo, 'later.txt'), 'appeared later\n');
		await files.getByRole('button', { name: 'Refresh' }).click();
		await row('later.txt').waitFor();

		// Every skin in both modes, on the same diff.
		for (const skin of SKINS) {
			for (const mode of ['light', 'dark']) {
				await setLook(page, mode, skin);
				await page.reload();
				await row('src/main.rs').click();
				await pane.locator('td.code.del', { hasText: 'let answer = 41;' }).waitFor();
				assert.equal(await page.evaluate(() => document.documentElement.dataset.skin), skin);
				await page.screenshot({ path: screenshotPath(`tools-diff-${mode}-${skin}`) });
			}
		}
		await closeContext(ctx);

		// A session outside any repository.
		const plain = await http(stack.base, 'POST', '/api/sessions', { working_dir: stack.project, provider: 'fake', model: 'fake-model', session_name: 'plain', shared: true });
		assert.equal(plain.status, 201, JSON.stringify(plain.json));
		const ctx2 = await newPage({ viewport: { width: 1000, height: 700 } });
		await ctx2.page.goto(`${base}/session/${plain.json.piface_id}?tab=diff`);
		await ctx2.page.getByText('Not a git repository.').waitFor();
		await closeContext(ctx2);
		await http(stack.base, 'POST', `/api/sessions/${plain.json.piface_id}/kill`);
	});

	test('Terminal: a command runs in the PTY, the screen survives tab switches and reloads', async () => {
		const ctx = await newPage({ viewport: { width: 1200, height: 800 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}?tab=terminal`);
		await setLook(page, 'dark', 'synthwave');
		await page.reload();
		await page.locator('.term-bar .state-open').waitFor({ timeout: 20_000 });
		await page.locator('.xterm').click();
		// Arithmetic expansion: the output line can only come from bash, not from the echo of what was typed.
		await page.keyboard.type('echo hi-$((40+2))');
		await page.keyboard.press('Enter');
		const rows = page.locator('.xterm-rows');
		await waitFor(async () => /(^|\n)hi-42/.test(await rows.innerText()), { what: 'the command output' });
		assert.match(await rows.innerText(), /repo/, 'the shell starts in the session directory');
		await page.screenshot({ path: screenshotPath('tools-terminal-dark-synthwave') });

		// Chat and back: the same terminal (not remounted), still connected.
		await page.getByRole('button', { name: 'Chat', exact: true }).click();
		assert.equal(await page.locator('.xterm').isVisible(), false);
		await page.getByRole('button', { name: 'Terminal', exact: true }).click();
		await page.locator('.term-bar .state-open').waitFor();
		assert.match(await rows.innerText(), /hi-42/);
		assert.equal(await page.locator('.xterm').count(), 1);

		// A reload reconnects and the server replays the scrollback.
		await page.reload();
		await page.locator('.term-bar .state-open').waitFor({ timeout: 20_000 });
		await waitFor(async () => /hi-42/.test(await rows.innerText()), { what: 'the scrollback after a reload' });

		// Resizing the window resizes the PTY.
		const sttyCols = async () => {
			await page.locator('.xterm').click();
			await page.keyboard.type('clear; stty size');
			await page.keyboard.press('Enter');
			let m = null;
			await waitFor(async () => (m = /(?:^|\n)(\d+) (\d+)\s*(?:\n|$)/.exec(await rows.innerText())), { what: 'stty size output' });
			return Number(m[2]);
		};
		const wide = await sttyCols();
		await page.setViewportSize({ width: 600, height: 600 });
		await waitFor(async () => (await sttyCols()) < wide, { what: `the PTY to get narrower than ${wide} columns` });
		await closeContext(ctx);
	});

	test('Scratch: autosaves to localStorage and comes back after a reload', async () => {
		const ctx = await newPage({ viewport: { width: 1000, height: 700 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}?tab=scratch`);
		const notes = page.getByRole('textbox', { name: 'Scratch notes' });
		await notes.fill('tools test notes');
		await page.getByText('Saved in this browser.').waitFor({ timeout: 5000 });
		assert.equal(await page.evaluate((id) => localStorage.getItem(`piface.session.scratch:${id}`), sessionId), 'tools test notes');
		await page.reload();
		assert.equal(await notes.inputValue(), 'tools test notes');
		await closeContext(ctx);
	});

	test('attachments: picked, dropped and pasted files upload, can be removed, and reach pi', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}`);
		await setLook(page, 'light');
		await page.reload();
		await page.locator('.badge.conn-open').waitFor();
		// Voice and TTS are off in this cluster: the buttons say so.
		assert.match(await page.getByRole('button', { name: 'Mic → Text' }).getAttribute('title'), /^No speech worker in this cluster\. To turn it on, .* --speech/);
		assert.equal(await page.getByRole('button', { name: 'Mic → Text' }).isDisabled(), true);

		// pi writes its session file on the first turn; uploads need it.
		const box = page.getByRole('textbox', { name: 'Message', exact: true });
		await box.fill('hello tools');
		await box.press('Enter');
		await page.locator('.msg.assistant', { hasText: 'echo: hello tools' }).waitFor();
		const listen = page.locator('.msg.assistant', { hasText: 'echo: hello tools' }).getByRole('button', { name: 'Listen' });
		assert.match(await listen.getAttribute('title'), /^No text-to-speech worker in this cluster\. To turn it on, .* --tts/);
		await waitFor(async () => (await http(stack.base, 'GET', `/api/sessions/${sessionId}`)).json.session_file, { what: 'session file' });

		// Picked.
		await page.locator('input[type=file]').setInputFiles({ name: 'note.txt', mimeType: 'text/plain', buffer: Buffer.from('attached-content-123\n') });
		const chips = page.getByRole('list', { name: 'Attachments' });
		const note = chips.locator('.chip', { hasText: 'note.txt' });
		await note.locator('.chip-state', { hasText: /B$/ }).waitFor();
		const path = await note.getAttribute('title');
		assert.match(path, /\/uploads\/_shared\/[0-9a-f]+_note\.txt$/);

		// Dropped on the feed, then removed before sending.
		const drop = await page.evaluateHandle(() => {
			const dt = new DataTransfer();
			dt.items.add(new File(['dropped'], 'dropped.txt', { type: 'text/plain' }));
			return dt;
		});
		await page.dispatchEvent('.feed', 'dragenter', { dataTransfer: drop });
		await page.getByText('Drop files to attach').waitFor();
		await page.dispatchEvent('.feed', 'drop', { dataTransfer: drop });
		await chips.locator('.chip.chip-done', { hasText: 'dropped.txt' }).waitFor();
		await chips.getByRole('button', { name: 'Remove dropped.txt' }).click();
		await chips.locator('.chip', { hasText: 'dropped.txt' }).waitFor({ state: 'detached' });

		// Pasted (an image, as a screenshot paste would bring).
		await box.focus();
		await page.evaluate((b64) => {
			const bytes = Uint8Array.from(atob(b64), (c) => c.charCodeAt(0));
			const dt = new DataTransfer();
			dt.items.add(new File([bytes], 'image.png', { type: 'image/png' }));
			document.querySelector('textarea[aria-label="Message"]').dispatchEvent(new ClipboardEvent('paste', { clipboardData: dt, bubbles: true, cancelable: true }));
		}, PNG.toString('base64'));
		await chips.locator('.chip.chip-done', { hasText: 'image.png' }).waitFor();
		await page.screenshot({ path: screenshotPath('tools-attachments') });

		// Sent with the message: pi gets the paths and can read the file.
		await box.fill(`[[bash:cat ${path}]]`);
		await box.press('Enter');
		await page.locator('.msg.assistant', { hasText: 'tool said: attached-content-123' }).waitFor({ timeout: 30_000 });
		assert.equal(await chips.count(), 0, 'the sent chips are gone');
		const call = page.locator('.tool-call summary', { hasText: 'bash(cat ' }).last();
		await call.waitFor();
		// The replay shows the message as pi got it, with the manifest the server added.
		await page.reload();
		await page.locator('.msg.user .bubble', { hasText: 'Attached files (session-local file paths):' }).first().waitFor();
		assert.match(await page.locator('.msg.user .bubble').last().innerText(), /_image\.png/);
		await closeContext(ctx);
	});

	test('on a phone the tool tabs fit 375 px', async () => {
		const ctx = await newPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}?tab=files`);
		await setLook(page, 'dark');
		await page.reload();
		await page.getByRole('list', { name: 'Contents of repo' }).getByRole('button', { name: 'README.md' }).click();
		await page.locator('.file-markdown h1').waitFor();
		await noHorizontalOverflow(page, 'the Files preview');
		await page.screenshot({ path: screenshotPath('tools-phone-files') });
		await page.getByRole('button', { name: 'Back to the file list' }).click();
		await page.getByRole('list', { name: 'Contents of repo' }).waitFor();

		await page.getByRole('button', { name: 'Diff', exact: true }).click();
		await page.locator('button.file', { hasText: 'src/main.rs' }).click();
		await page.locator('table.unified tr.add').first().waitFor();
		await noHorizontalOverflow(page, 'the Diff tab');
		await page.screenshot({ path: screenshotPath('tools-phone-diff') });

		await page.getByRole('button', { name: 'Terminal', exact: true }).click();
		await page.locator('.term-bar .state-open').waitFor({ timeout: 20_000 });
		await page.getByRole('toolbar', { name: 'Terminal keys' }).getByRole('button', { name: 'Control-C (interrupt)' }).waitFor();
		await noHorizontalOverflow(page, 'the Terminal tab');
		await page.screenshot({ path: screenshotPath('tools-phone-terminal') });
		await closeContext(ctx);
	});

	test('no request left the machine and the pages raised no errors', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});
