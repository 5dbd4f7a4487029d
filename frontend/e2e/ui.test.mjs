// End-to-end tests of the web UI in Debian's chromium against the real piface, pi and fake LLM.
// Screenshots go to frontend/test-output/. Tests run in order and share one server: later tests use the
// session the first one created. PIFACE_E2E_FRESH_UI=1 (or PIFACE_E2E_UI_DIR=<build>) serves a fresh
// `npm run build` through a loopback proxy instead of the UI the binary embeds, as in tools.test.mjs.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { existsSync, readFileSync, statSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { freshUiProxy, frontendDir, guardedContext, http, launchBrowser, outputDir, screenshotPath, startStack, waitFor } from './harness.mjs';

/** A prompt whose echo exercises Markdown, a code block, inline and display math and a Mermaid diagram. */
const RICH_PROMPT = [
	'Here is **bold text** and a list:',
	'',
	'- one',
	'- two',
	'',
	'```rust',
	'fn main() { println!("hi"); }',
	'```',
	'',
	'Inline math $E = mc^2$ and display math:',
	'',
	'$$\\int_0^1 x^2 \\, dx = \\frac{1}{3}$$',
	'',
	'```mermaid',
	'graph TD; Start-->Finish',
	'```'
].join('\n');

let stack;
let browser;
let proxy = null;
/** Where pages come from: piface itself, or the fresh-UI proxy. */
let base;
let sessionId;
const foreignRequests = [];
/** Figures written to test-output/perf.json by the performance test. */
const figures = {};
const pageErrors = [];

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

async function setLook(page, mode, skin = 'default') {
	await page.evaluate(
		([m, s]) => {
			localStorage.setItem('piface.theme.mode', m);
			localStorage.setItem('piface.theme.skin', s);
		},
		[mode, skin]
	);
}

describe('piface web UI', { timeout: 600_000 }, () => {
	before(async () => {
		stack = await startStack();
		browser = await launchBrowser(stack.bins);
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		proxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(stack.base, uiDir || undefined) : null;
		base = proxy?.url ?? stack.base;
	});

	after(async () => {
		await browser?.close();
		await Promise.race([proxy?.close(), new Promise((r) => setTimeout(r, 3000))]);
		await stack?.stop();
	});

	test('the dashboard creates a session, which opens the session view', async () => {
		const ctx = await newPage({ viewport: { width: 1200, height: 860 } });
		const { page } = ctx;
		await page.goto(base + '/');
		await page.getByText('No sessions yet').waitFor();
		await page.getByRole('button', { name: '+ New Session' }).click();
		await page.locator('#ns-dir').fill(stack.project);
		// The models come from pi's probe: the fake provider and model are preselected.
		await waitFor(async () => (await page.getByLabel('Model').inputValue()) === 'fake-model', { what: 'model list' });
		await page.getByLabel('Session Name').fill('e2e demo');
		await page.getByRole('button', { name: 'Create Session' }).click();
		await page.waitForURL(/\/session\/[0-9a-f-]+$/);
		sessionId = page.url().split('/').pop();
		await page.locator('.badge.conn-open').waitFor();
		assert.equal(await page.title(), 'e2e demo — piface');
		await closeContext(ctx);
	});

	test('a prompt streams back and renders Markdown, code, math and a Mermaid diagram', async () => {
		const ctx = await newPage({ viewport: { width: 1200, height: 900 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}`);
		await setLook(page, 'light');
		await page.reload();
		await page.locator('.badge.conn-open').waitFor();
		const box = page.getByRole('textbox', { name: 'Message', exact: true });
		await box.fill(RICH_PROMPT);
		await box.press('Enter');
		assert.equal(await box.inputValue(), '', 'the composer is cleared after sending');
		const answer = page.locator('.msg.assistant').last();
		await answer.locator('strong', { hasText: 'bold text' }).waitFor();
		await answer.locator('pre code.language-rust').waitFor();
		await answer.locator('span.math svg').first().waitFor();
		assert.equal(await answer.locator('span.math svg').count(), 2, 'inline and display math are typeset');
		await answer.locator('.mermaid-diagram svg').waitFor();
		assert.match(await answer.locator('.mermaid-diagram svg').innerHTML(), /Start/);
		// The user's own message shows once, as sent.
		assert.equal(await page.locator('.msg.user .bubble').count(), 1);
		// What the lazy renderers (highlight.js, MathJax, Mermaid) added to the transfer.
		await page.waitForLoadState('networkidle');
		figures.session_with_code_math_mermaid = transferSizes(await page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name)));
		await page.waitForTimeout(300);
		await page.screenshot({ path: screenshotPath('chat-light') });

		await setLook(page, 'dark');
		await page.reload();
		await page.locator('.msg.assistant .mermaid-diagram svg').waitFor();
		await page.locator('.msg.assistant span.math svg').first().waitFor();
		assert.equal(await page.locator('.msg.user .bubble').count(), 1, 'a reload shows each message once');
		await page.waitForTimeout(300);
		await page.screenshot({ path: screenshotPath('chat-dark') });
		await closeContext(ctx);
	});

	test('a tool call waits for an extension confirm answered in the browser', async () => {
		const ctx = await newPage({ viewport: { width: 1200, height: 900 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}`);
		await setLook(page, 'light', 'windows98');
		await page.reload();
		await page.locator('.badge.conn-open').waitFor();
		const box = page.getByRole('textbox', { name: 'Message', exact: true });
		await box.fill('[[bash:echo guarded]]');
		await box.press('Enter');
		const dialog = page.getByRole('dialog', { name: 'Run guarded command?' });
		await dialog.waitFor();
		assert.match(await dialog.innerText(), /The test extension asks before running it/);
		// Meanwhile the dashboard shows that the session needs attention.
		const sessions = (await http(stack.base, 'GET', '/api/sessions')).json.sessions;
		assert.equal(sessions.find((s) => s.piface_id === sessionId).attention_required, true);
		await page.screenshot({ path: screenshotPath('extension-dialog-windows98') });
		await dialog.getByRole('button', { name: 'Yes' }).click();
		await page.locator('.tool-call summary', { hasText: 'bash(echo guarded)' }).waitFor();
		const result = page.locator('.tool-result', { hasText: 'bash' }).last();
		await result.waitFor();
		await result.locator('summary').click();
		assert.match(await result.innerText(), /guarded/);
		await page.locator('.msg.assistant', { hasText: 'tool said: guarded' }).waitFor();
		await page.screenshot({ path: screenshotPath('chat-tool-call-windows98') });

		// `!!` runs on the server, outside the model's context.
		await box.fill('!!echo from-the-server');
		await box.press('Enter');
		const bash = page.locator('.tool-result.bash', { hasText: 'from-the-server' });
		await bash.waitFor();
		// The block is attached before its text is laid out: poll rather than read once.
		let text = '';
		for (let i = 0; i < 50 && !/excluded from model context/.test(text); i++) {
			text = await bash.innerText();
			if (!/excluded from model context/.test(text)) await page.waitForTimeout(100);
		}
		assert.match(text, /\$ echo from-the-server[\s\S]*excluded from model context/);
		// pi never sees it, so it is not in the replay; the page keeps it across a reload all the same.
		await page.reload();
		await page.locator('.badge.conn-open').waitFor();
		await page.locator('.msg.assistant', { hasText: 'tool said: guarded' }).waitFor();
		await page.waitForTimeout(500);
		assert.equal(await page.locator('.tool-result.bash', { hasText: 'from-the-server' }).count(), 1);
		await closeContext(ctx);
	});

	test('dashboard screenshots, light and dark, and one skin', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 720 } });
		const { page } = ctx;
		await page.goto(base + '/');
		for (const [mode, skin] of [['light', 'default'], ['dark', 'default'], ['dark', 'synthwave'], ['light', 'beos']]) {
			await setLook(page, mode, skin);
			await page.reload();
			await page.locator('.session-row').first().waitFor();
			assert.equal(await page.evaluate(() => document.documentElement.dataset.theme), mode);
			assert.equal(await page.evaluate(() => document.documentElement.dataset.skin), skin);
			await page.screenshot({ path: screenshotPath(`dashboard-${mode}${skin === 'default' ? '' : '-' + skin}`) });
		}
		await page.goto(`${base}/session/${sessionId}`);
		await setLook(page, 'dark', 'synthwave');
		await page.reload();
		await page.locator('.msg.assistant .mermaid-diagram svg').waitFor();
		await page.waitForTimeout(300);
		await page.screenshot({ path: screenshotPath('chat-dark-synthwave') });
		await closeContext(ctx);
	});

	test('on a phone, going offline and back loses and duplicates nothing', async () => {
		const ctx = await newPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
		const { page, context } = ctx;
		await page.goto(`${base}/session/${sessionId}`);
		await setLook(page, 'light');
		await page.reload();
		await page.locator('.badge.conn-open').waitFor();
		await page.locator('.msg.assistant', { hasText: 'tool said: guarded' }).waitFor();
		const before = await page.locator('.feed-inner > .msg, .feed-inner > details.msg').count();
		const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
		assert.ok(overflow <= 0, `no horizontal scrolling at 375 px (overflow ${overflow}px)`);
		await page.locator('.msg.assistant span.math svg').first().waitFor();
		await page.locator('.msg.assistant .mermaid-diagram svg').waitFor();
		await page.screenshot({ path: screenshotPath('phone-chat-light') });

		const box = page.getByRole('textbox', { name: 'Message', exact: true });
		await box.fill('[[tokens:60]] [[delay:40]] count');
		await box.press('Enter');
		await page.locator('.msg.assistant.live').waitFor();
		await context.setOffline(true);
		await page.locator('.conn-state').waitFor(); // "reconnecting…"
		await page.waitForTimeout(1500);
		await context.setOffline(false);
		await page.locator('.badge.conn-open').waitFor({ timeout: 20_000 });
		const finalText = page.locator('.msg.assistant:not(.live)', { hasText: 't59' });
		await finalText.waitFor({ timeout: 30_000 });
		await page.locator('.working').waitFor({ state: 'detached' });
		// Exactly one new user message and one new answer, the answer complete.
		const after = await page.locator('.feed-inner > .msg, .feed-inner > details.msg').count();
		assert.equal(after, before + 2, 'one prompt and one answer were added');
		assert.equal(await page.locator('.msg.user .bubble', { hasText: 'count' }).count(), 1);
		assert.equal(await finalText.count(), 1);
		const tokens = (await finalText.locator('.markdown').innerText()).trim().split(/\s+/);
		assert.deepEqual(tokens, Array.from({ length: 60 }, (_, i) => `t${i}`), 'every token exactly once, in order');
		await page.screenshot({ path: screenshotPath('phone-chat-after-reconnect') });

		await page.goto(base + '/');
		await setLook(page, 'dark');
		await page.reload();
		await page.locator('.session-row').first().waitFor();
		const dashOverflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
		assert.ok(dashOverflow <= 0, `dashboard fits 375 px (overflow ${dashOverflow}px)`);
		await page.screenshot({ path: screenshotPath('phone-dashboard-dark') });
		await closeContext(ctx);
	});

	test('kill and resume from the dashboard; a closed session is read-only with Resume', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } });
		const { page } = ctx;
		await page.goto(base + '/');
		await setLook(page, 'light');
		await page.reload();
		const row = page.locator(`.session-row[data-session-id="${sessionId}"]`);
		await row.locator('.badge.status-live').waitFor();
		await row.getByRole('button', { name: 'Kill' }).click();
		await page.getByRole('dialog').getByRole('button', { name: 'Kill' }).click();
		await row.locator('.badge.status-closed').waitFor();

		await page.goto(`${base}/session/${sessionId}`);
		await page.locator('.badge.archived').waitFor();
		await page.locator('.msg.assistant', { hasText: 'tool said: guarded' }).waitFor();
		assert.equal(await page.getByRole('textbox', { name: 'Message', exact: true }).getAttribute('placeholder'), 'Archived session (read-only)');
		assert.equal(await page.getByRole('textbox', { name: 'Message', exact: true }).isDisabled(), true);
		await page.locator('.msg.assistant .mermaid-diagram svg').waitFor();
		await page.screenshot({ path: screenshotPath('chat-archived-light') });

		await page.goto(base + '/');
		await row.getByRole('button', { name: 'Resume' }).click();
		await page.getByRole('dialog').getByRole('button', { name: 'Resume' }).click();
		await row.locator('.badge.status-live').waitFor();
		await page.goto(`${base}/session/${sessionId}`);
		await page.locator('.badge.conn-open').waitFor();
		await page.locator('.msg.assistant', { hasText: 'tool said: guarded' }).waitFor();
		await closeContext(ctx);
	});

	test('Render Markdown is persisted per session; the Scratch tab keeps notes and the tab lives in the URL', async () => {
		const ctx = await newPage({ viewport: { width: 1000, height: 800 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}`);
		await page.locator('.badge.conn-open').waitFor();
		const toggle = page.getByRole('checkbox', { name: 'Render Markdown' });
		await toggle.uncheck();
		await page.locator('.msg.assistant pre.plain', { hasText: '**bold text**' }).waitFor();
		assert.equal((await http(stack.base, 'GET', `/api/sessions/${sessionId}`)).json.render_markdown, false);
		await toggle.check();
		await page.locator('.msg.assistant strong', { hasText: 'bold text' }).waitFor();
		assert.equal((await http(stack.base, 'GET', `/api/sessions/${sessionId}`)).json.render_markdown, true);

		await page.getByRole('button', { name: 'Scratch', exact: true }).click();
		assert.match(page.url(), /\?tab=scratch$/);
		const notes = page.getByRole('textbox', { name: 'Scratch notes' });
		await notes.fill('remember the milk');
		await page.reload();
		assert.equal(await notes.inputValue(), 'remember the milk');
		await page.getByRole('button', { name: 'Files', exact: true }).click();
		await page.locator('section.browser').waitFor();
		await page.getByRole('button', { name: 'Chat', exact: true }).click();
		assert.ok(!page.url().includes('tab='), 'chat is the URL without ?tab');
		await closeContext(ctx);
	});

	test('B shows "Branch from here"; branching opens the new session with the message pre-filled', async () => {
		const ctx = await newPage({ viewport: { width: 1000, height: 800 } });
		const { page } = ctx;
		await page.goto(`${base}/session/${sessionId}`);
		await page.locator('.badge.conn-open').waitFor();
		await page.locator('.msg.assistant', { hasText: 'tool said: guarded' }).waitFor();
		await page.locator('.feed').click({ position: { x: 5, y: 5 } });
		await page.keyboard.press('b');
		const branchHere = page.locator('.msg.user', { hasText: '[[bash:echo guarded]]' }).getByRole('button', { name: 'Branch from here' });
		await branchHere.click();
		const dialog = page.getByRole('dialog', { name: 'Branch session' });
		await dialog.getByLabel('New session name').fill('branched');
		assert.match(await dialog.getByLabel('Branch from message').locator('option:checked').innerText(), /echo guarded/);
		await dialog.getByRole('button', { name: 'Branch', exact: true }).click();
		await page.waitForURL((u) => !u.pathname.endsWith(sessionId));
		await page.locator('.session-name', { hasText: 'branched' }).waitFor();
		assert.equal(await page.getByRole('textbox', { name: 'Message', exact: true }).inputValue(), '[[bash:echo guarded]]');
		await page.keyboard.press('Escape');
		await closeContext(ctx);
	});

	test('performance: initial transfer and a 5,000-message replay', async () => {
		// A fresh session, to measure what the session view loads before any message needs a lazy renderer.
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: stack.project, provider: 'fake', model: 'fake-model', session_name: 'replay 5000', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		const id = created.json.piface_id;

		for (const [view, path] of [['dashboard', '/'], ['session', `/session/${id}`]]) {
			const ctx = await newPage({ viewport: { width: 1200, height: 800 } });
			await ctx.page.goto(base + path);
			await ctx.page.locator(view === 'dashboard' ? '.session-row' : '.badge.conn-open').first().waitFor();
			await ctx.page.waitForLoadState('networkidle');
			const urls = await ctx.page.evaluate(() => performance.getEntriesByType('resource').map((e) => e.name));
			figures[`${view}_initial`] = transferSizes(urls);
			await closeContext(ctx);
		}

		// One real turn so that pi writes the session file, then 5,000 more messages appended to it.
		{
			const ctx = await newPage();
			await ctx.page.goto(`${base}/session/${id}`);
			await ctx.page.locator('.badge.conn-open').waitFor();
			const box = ctx.page.getByRole('textbox', { name: 'Message', exact: true });
			await box.fill('hello');
			await box.press('Enter');
			await ctx.page.locator('.msg.assistant', { hasText: 'echo: hello' }).waitFor();
			await closeContext(ctx);
		}
		const file = await waitFor(async () => (await http(stack.base, 'GET', `/api/sessions/${id}`)).json.session_file, { what: 'session file' });
		await http(stack.base, 'POST', `/api/sessions/${id}/kill`);
		appendMessages(file, 5000);

		for (const mode of ['archived', 'live']) {
			if (mode === 'live') assert.equal((await http(stack.base, 'POST', `/api/sessions/${id}/resume`)).status, 200);
			const ctx = await newPage({ viewport: { width: 1200, height: 800 } });
			const started = Date.now();
			await ctx.page.goto(`${base}/session/${id}`);
			await ctx.page.locator('.msg', { hasText: 'message 5000 of 5000' }).waitFor({ timeout: 60_000 });
			figures[`replay_5000_${mode}_ms`] = Date.now() - started;
			const shown = await ctx.page.locator('.feed-inner > .msg').count();
			assert.ok(shown <= 160, `only the newest messages are rendered at first (${shown})`);
			await ctx.page.getByRole('button', { name: /earlier messages/ }).waitFor();
			await closeContext(ctx);
		}
		console.log('# perf', JSON.stringify(figures));
		writeFileSync(join(outputDir, 'perf.json'), JSON.stringify(figures, null, 2));
	});

	test('no request left the machine and the pages raised no errors', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});

/** gzip and brotli sizes of the JS and CSS among `urls`, read from the build's precompressed files. */
function transferSizes(urls) {
	const out = { js_gzip: 0, css_gzip: 0, js_brotli: 0, css_brotli: 0, files: 0 };
	for (const u of urls) {
		const path = new URL(u).pathname;
		const kind = path.endsWith('.js') ? 'js' : path.endsWith('.css') ? 'css' : null;
		if (!kind) continue;
		const file = join(frontendDir, 'build', path);
		if (!existsSync(file)) continue;
		out.files += 1;
		out[`${kind}_gzip`] += existsSync(`${file}.gz`) ? statSync(`${file}.gz`).size : statSync(file).size;
		out[`${kind}_brotli`] += existsSync(`${file}.br`) ? statSync(`${file}.br`).size : statSync(file).size;
	}
	out.total_gzip = out.js_gzip + out.css_gzip;
	out.total_brotli = out.js_brotli + out.css_brotli;
	return out;
}

/** Appends `n` user/assistant messages (Markdown with code) to a pi session file, on its active branch. */
function appendMessages(file, n) {
	const lines = readFileSync(file, 'utf8').trim().split('\n');
	let parent = null;
	for (const line of lines) {
		const e = JSON.parse(line);
		if (typeof e.id === 'string') parent = e.id;
	}
	const out = [];
	const t0 = Date.now();
	for (let i = 1; i <= n; i++) {
		const id = `perf${String(i).padStart(6, '0')}`;
		const ts = new Date(t0 + i).toISOString();
		const text = `message ${i} of ${n}`;
		const message =
			i % 2
				? { role: 'user', content: [{ type: 'text', text: `Question: ${text}` }], timestamp: t0 + i }
				: {
						role: 'assistant',
						content: [{ type: 'text', text: `Answer to **${text}** with \`inline code\` and a list:\n\n- first\n- second\n\n\`\`\`js\nconsole.log(${i});\n\`\`\`\n\n${text}` }],
						api: 'openai-completions',
						provider: 'fake',
						model: 'fake-model',
						usage: { input: 1, output: 1, cacheRead: 0, cacheWrite: 0, totalTokens: 2, cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0, total: 0 } },
						stopReason: 'stop',
						timestamp: t0 + i
					};
		out.push(JSON.stringify({ type: 'message', id, parentId: parent, timestamp: ts, message }));
		parent = id;
	}
	writeFileSync(file, lines.join('\n') + '\n' + out.join('\n') + '\n');
}
