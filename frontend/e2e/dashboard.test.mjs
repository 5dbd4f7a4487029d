// End-to-end tests of the dashboard in Debian's chromium against the real piface, pi and fake LLM: the
// agents panel, live updates over /ws/dashboard, the New Session form's agent picker and directory
// autocomplete, the Project Config dialog, phone width, and the time to render a 5,000-message archived
// session (printed, not asserted).
//
// The binary embeds the UI it was compiled with. To run these against a fresh `npm run build` without
// rebuilding piface, set PIFACE_E2E_FRESH_UI=1: the pages are then served by a loopback proxy from
// frontend/build (or PIFACE_E2E_UI_DIR), with the API forwarded to piface (harness.mjs `freshUiProxy`).

import assert from 'node:assert/strict';
import { existsSync, mkdirSync, rmSync, writeFileSync } from 'node:fs';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freshUiProxy, guardedContext, http, launchBrowser, outputDir, screenshotPath, startStack, waitFor } from './harness.mjs';

/** The archived session imported from a seeded state.json, with a generated 5,000-message session file. */
const REPLAY_ID = '55555555-5555-4555-8555-555555555555';
const REPLAY_MESSAGES = 5000;

let stack;
/** The directory the tests create sessions in and complete paths under. */
let work;
let proxy;
let base;
let browser;
const foreignRequests = [];
const pageErrors = [];
const figures = {};

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

/** A pi session file (pi's docs/session-format.md, version 3) with `n` messages on one branch. */
function writeSessionFile(file, cwd, n) {
	const t0 = Date.parse('2026-05-01T12:00:00Z');
	const lines = [JSON.stringify({ type: 'session', version: 3, id: 'e2e00000-0000-4000-8000-000000000000', timestamp: new Date(t0).toISOString(), cwd })];
	let parent = null;
	for (let i = 1; i <= n; i++) {
		const id = i.toString(16).padStart(8, '0');
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
		lines.push(JSON.stringify({ type: 'message', id, parentId: parent, timestamp: new Date(t0 + i).toISOString(), message }));
		parent = id;
	}
	writeFileSync(file, lines.join('\n') + '\n');
}

/** Where the file tools may look: piface's file roots default to the home directory. */
const workDir = (home) => join(home, 'code');

/** Directories for the autocomplete (inside HOME, the file tools' default root), and an original-format
 * state.json with one closed session whose file holds 5,000 messages (piface imports it on first start). */
function seed({ root, home, dataDir }) {
	for (const d of ['alpha', 'beta', 'beta/inner', '.hidden', 'gamma']) mkdirSync(join(workDir(home), d), { recursive: true });
	const archive = join(root, 'archive');
	mkdirSync(archive);
	const file = join(archive, 'replay.jsonl');
	writeSessionFile(file, archive, REPLAY_MESSAGES);
	const record = {
		piface_id: REPLAY_ID,
		working_dir: archive,
		status: 'closed',
		session_file: file,
		no_session: false,
		use_direnv: false,
		model_provider: 'fake',
		model_id: 'fake-model',
		thinking_level: null,
		session_name: 'replay 5000',
		render_markdown: true,
		parent_piface_id: null,
		branch_entry_id: null,
		project_dir: archive,
		project_subdir: '.',
		execution_dir: archive,
		workspace_mode: 'shared',
		created_at: '2026-05-01T12:00:00.000000Z',
		last_active: '2026-05-01T12:30:00.000000Z'
	};
	writeFileSync(join(dataDir, 'state.json'), JSON.stringify({ sessions: { [REPLAY_ID]: record }, uploads: {}, session_upload_ids: {} }));
}

/** The dashboard socket with extra agents in its snapshot; `inject` sends more frames to the page. */
async function withExtraAgents(page, extra) {
	let route;
	await page.routeWebSocket(/\/ws\/dashboard$/, (ws) => {
		route = ws;
		const server = ws.connectToServer();
		server.onMessage((m) => {
			const frame = JSON.parse(String(m));
			if (frame.type === 'piface_dashboard') frame.agents = [...(frame.agents ?? []), ...extra];
			ws.send(JSON.stringify(frame));
		});
	});
	return {
		inject: async (frame) => {
			await waitFor(() => route, { what: 'the dashboard socket' });
			route.send(JSON.stringify(frame));
		}
	};
}

const gpuAgent = (status = 'up') => ({
	name: 'gpu-box',
	status,
	last_seen: new Date(Date.now() - 5 * 60_000).toISOString(),
	hostname: 'gpu-box.lan',
	os: 'linux x86_64',
	software_version: '0.1.0',
	pi_version: '0.73.1',
	gpus: [0, 1].map((index) => ({ index, name: 'NVIDIA GeForce RTX 4090', uuid: `GPU-${index}`, memory_mib: 24564, compute_capability: '8.9' })),
	live_sessions: 0,
	speech: {
		model: 'nvidia/parakeet-tdt-0.6b-v3',
		device: 'cuda:0 (NVIDIA GeForce RTX 4090)',
		busy: 0,
		done: 0,
		state: 'downloading',
		file: 'parakeet-tdt-0.6b-v3.nemo',
		done_bytes: 117_000_000,
		total_bytes: 2_470_000_000,
		bytes_per_s: 52_000_000,
		eta_s: 45
	},
	tts: { model: 'kakao-enterprise/vits-ljs', device: 'cpu', busy: 0, done: 3, state: 'ready' }
});

describe('piface dashboard', { timeout: 600_000 }, () => {
	before(async () => {
		stack = await startStack(seed);
		work = workDir(stack.home);
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		proxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(stack.base, uiDir || undefined) : null;
		base = proxy?.url ?? stack.base;
		browser = await launchBrowser(stack.bins);
	});

	after(async () => {
		await browser?.close();
		await proxy?.close();
		await stack?.stop();
	});

	test('the agents panel shows the local agent up', async () => {
		const agents = (await http(stack.base, 'GET', '/api/agents')).json.agents;
		assert.deepEqual(
			agents.map((a) => [a.name, a.status]),
			[['local', 'up']]
		);
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } });
		const { page } = ctx;
		await page.goto(base + '/');
		const panel = page.getByRole('region', { name: 'Agents' });
		const local = panel.locator('[data-agent="local"]');
		await local.waitFor();
		assert.equal(await local.locator('.badge').innerText(), 'up');
		assert.match(await panel.innerText(), /1 of 1 up/);
		// The imported archive session's group names its agent.
		await page.locator('.group[data-agent="local"] .group-agent', { hasText: 'local' }).first().waitFor();
		await page.screenshot({ path: screenshotPath('dashboard-agents') });
		// The new parts use the skins' tokens: two skins, dark and light.
		for (const [mode, skin] of [['dark', 'synthwave'], ['light', 'windows98']]) {
			await page.evaluate(([m, s]) => (localStorage.setItem('piface.theme.mode', m), localStorage.setItem('piface.theme.skin', s)), [mode, skin]);
			await page.reload();
			await local.waitFor();
			assert.equal(await page.evaluate(() => document.documentElement.dataset.skin), skin);
			await page.screenshot({ path: screenshotPath(`dashboard-agents-${mode}-${skin}`) });
		}
		await closeContext(ctx);
	});

	test('sessions and agents update live over /ws/dashboard', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 800 } });
		const { page } = ctx;
		const socket = await withExtraAgents(page, [gpuAgent('up')]);
		// The page's clock is Playwright's, so that "last seen" can be checked after the page has been open a while.
		await page.clock.install();
		await page.goto(base + '/');
		const panel = page.getByRole('region', { name: 'Agents' });
		const gpu = panel.locator('[data-agent="gpu-box"]');
		await gpu.waitFor();
		assert.match(await gpu.innerText(), /2 × RTX 4090 \(24 GiB\)/);
		assert.match(await panel.innerText(), /2 of 2 up/);

		// Its speech services: a download with a labelled bar, then ready once the next update says so.
		const speech = gpu.locator('[data-service="speech"]');
		assert.equal(
			await speech.innerText(),
			'Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (RTX 4090) — downloading parakeet-tdt-0.6b-v3.nemo 4.7 % (117 MB of 2.5 GB, 52 MB/s, ETA 0:45)'
		);
		const bar = gpu.getByRole('progressbar', { name: 'Speech-to-text model download' });
		assert.ok(Math.abs(Number(await bar.getAttribute('value')) - 117 / 2470) < 1e-6);
		assert.equal(await gpu.locator('[data-service="tts"]').innerText(), 'Text-to-speech: vits-ljs on cpu — ready, 3 done');
		const ready = { ...gpuAgent('up').speech, state: 'ready', done: 12 };
		await socket.inject({ type: 'piface_agent', agent: { ...gpuAgent('up'), speech: ready } });
		await speech.filter({ hasText: '— ready, 12 done' }).waitFor();
		assert.equal(await bar.count(), 0);

		// The page has been open for 10 minutes when the agent goes down, last seen 5 minutes before that moment:
		// the panel's clock must be the time of the change, not the time the page was opened (which said
		// "just now", or "4 min ago" when the page had been open for a second).
		await page.clock.fastForward('10:00');
		const pageNow = await page.evaluate(() => Date.now());
		await socket.inject({ type: 'piface_agent', agent: { ...gpuAgent('down'), last_seen: new Date(pageNow - 5 * 60_000).toISOString() } });
		await gpu.locator('.badge', { hasText: 'down' }).waitFor();
		assert.match(await gpu.innerText(), /last seen 5 min ago/);
		await socket.inject({ type: 'piface_agent', agent: { ...gpuAgent('down'), status: 'removed' } });
		await gpu.waitFor({ state: 'detached' });

		// A session created elsewhere appears without a reload, and its kill shows up too.
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: join(work, 'beta'), session_name: 'pushed', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		const row = page.locator(`.session-row[data-session-id="${created.json.piface_id}"]`);
		await row.locator('.badge.status-live').waitFor();
		await panel.locator('[data-agent="local"]', { hasText: '1 live session' }).waitFor();
		await http(stack.base, 'POST', `/api/sessions/${created.json.piface_id}/kill`);
		await row.locator('.badge.status-closed').waitFor();

		// Removing a directory from the history takes its group away, again without a reload.
		const gamma = join(work, 'gamma');
		const other = await http(stack.base, 'POST', '/api/sessions', { working_dir: gamma, shared: true });
		await http(stack.base, 'POST', `/api/sessions/${other.json.piface_id}/kill`);
		const group = page.getByRole('region', { name: `${gamma} on local` });
		await group.locator('.badge.status-closed').waitFor();
		await group.getByRole('button', { name: 'Remove directory from history' }).click();
		await page.getByRole('dialog').getByRole('button', { name: 'Remove' }).click();
		await group.waitFor({ state: 'detached' });
		await closeContext(ctx);
	});

	test('New Session: the agent is fixed with one agent; the directory autocompletes by keyboard', async () => {
		// (gamma was removed from the history by the previous test, not from the disk.)
		const ctx = await newPage({ viewport: { width: 1100, height: 860 } });
		const { page } = ctx;
		// The path's directory is listed (/api/fs/list) once it ends in '/', a partial name completes (/api/fs/complete).
		const asked = [];
		page.on('request', (r) => {
			const u = new URL(r.url());
			if (/^\/api\/fs\/(list|complete)$/.test(u.pathname)) asked.push([u.pathname.slice(8), u.searchParams.get('path') ?? u.searchParams.get('prefix'), u.searchParams.get('agent')]);
		});
		await page.goto(base + '/');
		await page.getByRole('button', { name: '+ New Session' }).click();
		const form = page.getByRole('form', { name: 'New session' });
		assert.equal(await form.locator('output#ns-agent').getAttribute('data-agent'), 'local');
		assert.equal(await form.getByRole('combobox', { name: 'Agent' }).count(), 0, 'no picker with one agent');

		const input = page.getByRole('combobox', { name: 'Working Directory' });
		const list = page.getByRole('listbox', { name: 'Directories' });
		await input.fill(work + '/');
		await list.getByRole('option', { name: join(work, 'alpha'), exact: true }).waitFor();
		const options = await list.getByRole('option').allInnerTexts();
		assert.deepEqual(options, ['.hidden', 'alpha', 'beta', 'gamma'].map((d) => join(work, d)));
		assert.deepEqual(asked.at(-1), ['list', work, 'local']);

		// ↓ ↓ highlights the second option, Escape closes the list and keeps the text, ↓ reopens at the first.
		await input.press('ArrowDown');
		await input.press('ArrowDown');
		const active = await input.getAttribute('aria-activedescendant');
		assert.equal(await page.locator(`#${active}`).innerText(), join(work, 'alpha'));
		assert.equal(await page.locator(`#${active}`).getAttribute('aria-selected'), 'true');
		await input.press('Escape');
		assert.equal(await input.getAttribute('aria-expanded'), 'false');
		assert.equal(await input.inputValue(), work + '/');
		assert.equal(await form.count(), 1, 'Escape on the list does not close the form');

		// Typing narrows; Enter picks and lists the children of the pick.
		await input.pressSequentially('be');
		await list.getByRole('option', { name: join(work, 'beta'), exact: true }).waitFor();
		await waitFor(async () => (await list.getByRole('option').count()) === 1, { what: 'the narrowed list' });
		assert.deepEqual(asked.at(-1), ['complete', work + '/be', 'local']);
		await input.press('ArrowDown');
		await input.press('Enter');
		assert.equal(await input.inputValue(), join(work, 'beta'));
		await list.getByRole('option', { name: join(work, 'beta', 'inner'), exact: true }).waitFor();
		await input.press('Escape');

		await waitFor(async () => (await page.getByLabel('Model').inputValue()) === 'fake-model', { what: 'model list' });
		await page.getByLabel('Session Name').fill('picked');
		const posted = page.waitForRequest((r) => r.method() === 'POST' && new URL(r.url()).pathname === '/api/sessions');
		await page.getByRole('button', { name: 'Create Session' }).click();
		const body = JSON.parse((await posted).postData());
		assert.equal(body.agent, 'local');
		assert.equal(body.working_dir, join(work, 'beta'));
		await page.waitForURL(/\/session\/[0-9a-f-]+$/);
		const record = (await http(stack.base, 'GET', `/api/sessions/${page.url().split('/').pop()}`)).json;
		assert.equal(record.agent, 'local');
		assert.equal(record.working_dir, join(work, 'beta'));
		await closeContext(ctx);
	});

	test('New Session: with several agents up, a picker (default local) drives whose directories complete', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 860 } });
		const { page } = ctx;
		await withExtraAgents(page, [gpuAgent('up'), { ...gpuAgent('down'), name: 'old-box', gpus: [] }]);
		// gpu-box exists only in this page's socket: answer its file tools here, pass the local agent's through.
		const asked = [];
		await page.route(/\/api\/fs\/(list|complete)\?/, (route) => {
			const u = new URL(route.request().url());
			const q = u.searchParams;
			asked.push([u.pathname.slice(8), q.get('agent'), q.get('path') ?? q.get('prefix')]);
			if (q.get('agent') !== 'gpu-box') return route.continue();
			if (u.pathname.endsWith('/list')) {
				return route.fulfill({ json: { entries: ['models', 'runs', 'notes.txt'].map((n) => ({ name: n, path: `/data/${n}`, is_dir: !n.includes('.') })) } });
			}
			return route.fulfill({ json: { matches: ['/data/runs'] } });
		});
		await page.goto(base + '/');
		await page.getByRole('region', { name: 'Agents' }).locator('[data-agent="gpu-box"]').waitFor();
		await page.getByRole('button', { name: '+ New Session' }).click();
		const picker = page.getByRole('combobox', { name: 'Agent' });
		assert.equal(await picker.inputValue(), 'local');
		const names = await picker.locator('option').evaluateAll((os) => os.map((o) => o.value));
		assert.deepEqual(names, ['local', 'gpu-box'], 'only agents that are up');

		await picker.selectOption('gpu-box');
		const input = page.getByRole('combobox', { name: 'Working Directory' });
		await input.fill('/data/');
		const list = page.getByRole('listbox', { name: 'Directories' });
		await list.getByRole('option', { name: '/data/models' }).waitFor();
		assert.deepEqual(await list.getByRole('option').allInnerTexts(), ['/data/models', '/data/runs'], 'directories only');
		assert.deepEqual(asked.at(-1), ['list', 'gpu-box', '/data']);
		await input.pressSequentially('r');
		await waitFor(async () => (await list.getByRole('option').count()) === 1, { what: 'the completion' });
		assert.deepEqual(asked.at(-1), ['complete', 'gpu-box', '/data/r']);
		await page.screenshot({ path: screenshotPath('dashboard-new-session-agents') });
		await closeContext(ctx);
	});

	test('Project Config: edit, save, reload on focus, errors shown', async () => {
		const dir = join(work, 'beta');
		const ctx = await newPage({ viewport: { width: 1100, height: 900 } });
		const { page } = ctx;
		await page.goto(base + '/');
		const group = page.getByRole('region', { name: `${dir} on local` });
		await group.getByRole('button', { name: 'Project config' }).click();
		const dialog = page.getByRole('dialog', { name: 'Project Config' });
		await dialog.getByText('saving creates it').waitFor();
		await dialog.getByLabel('Session theme').selectOption('dark');
		await dialog.getByLabel('Session skin').selectOption({ label: 'BeOS Classic' });
		await dialog.getByLabel('Use direnv').uncheck();
		await dialog.getByLabel('Script', { exact: true }).fill('echo launched');
		await dialog.getByLabel('Timeout (s)').fill('soon');
		await dialog.getByRole('button', { name: 'Save' }).click();
		assert.match(await dialog.getByRole('alert').innerText(), /whole number of seconds/);
		await dialog.getByLabel('Timeout (s)').fill('12');
		await dialog.getByLabel('Terminal (pty)').uncheck();
		await dialog.getByRole('button', { name: 'Save' }).click();
		await dialog.getByText('Saved. New sessions will use this config.').waitFor();
		await page.screenshot({ path: screenshotPath('dashboard-project-config') });

		const saved = (await http(stack.base, 'GET', `/api/workspace/config?path=${encodeURIComponent(dir)}&agent=local`)).json;
		assert.equal(saved.has_config_file, true);
		assert.equal(saved.config.ui.theme_override, 'dark');
		assert.equal(saved.config.ui.skin_override, 'beos');
		assert.equal(saved.config.env.use_direnv, false);
		assert.equal(saved.config.launch.script.trim(), 'echo launched');
		assert.equal(saved.config.launch.timeout_seconds, 12);
		assert.deepEqual(saved.config.launch.apply_to, ['pi']);
		assert.ok(existsSync(join(dir, '.piface', 'workspace.toml')));

		// Someone else changes the file; the dialog picks it up when the window regains focus.
		const put = await http(stack.base, 'PUT', '/api/workspace/config', { path: dir, agent: 'local', config: { ...saved.config, ui: { ...saved.config.ui, theme_override: 'light' } } });
		assert.equal(put.status, 200, JSON.stringify(put.json));
		await page.evaluate(() => window.dispatchEvent(new Event('focus')));
		await waitFor(async () => (await dialog.getByLabel('Session theme').inputValue()) === 'light', { what: 'the reload on focus' });
		await dialog.getByRole('button', { name: 'Close' }).click();
		await dialog.waitFor({ state: 'detached' });

		// Reopened, it shows what is saved.
		await group.getByRole('button', { name: 'Project config' }).click();
		await dialog.getByText('Editing').waitFor();
		assert.equal(await dialog.getByLabel('Script', { exact: true }).inputValue(), 'echo launched');
		assert.equal(await dialog.getByLabel('Use direnv').isChecked(), false);
		await page.keyboard.press('Escape');
		await dialog.waitFor({ state: 'detached' });

		// A directory that vanished: the server's detail is shown, with a retry.
		const gone = join(work, 'alpha');
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: gone, shared: true, session_name: 'doomed' });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		await http(stack.base, 'POST', `/api/sessions/${created.json.piface_id}/kill`);
		rmSync(gone, { recursive: true });
		const doomed = page.getByRole('region', { name: `${gone} on local` });
		await doomed.getByRole('button', { name: 'Project config' }).click();
		const alert = dialog.getByRole('alert');
		await alert.waitFor();
		assert.match(await alert.innerText(), /Could not load the config: .*(does not exist|not found|No such)/i);
		assert.equal(await dialog.getByRole('button', { name: 'Try again' }).count(), 1);
		assert.equal(await dialog.getByRole('button', { name: 'Save' }).isDisabled(), true);
		await closeContext(ctx);
	});

	test('at 375 px the dashboard, the form and the config dialog fit and stay keyboard-reachable', async () => {
		const ctx = await newPage({ viewport: { width: 375, height: 740 }, isMobile: true, hasTouch: true, deviceScaleFactor: 2 });
		const { page } = ctx;
		await page.goto(base + '/');
		await page.getByRole('region', { name: 'Agents' }).waitFor();
		const overflow = () => page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
		assert.ok((await overflow()) <= 0, `dashboard fits 375 px (overflow ${await overflow()}px)`);
		await page.getByRole('button', { name: '+ New Session' }).click();
		await page.getByRole('combobox', { name: 'Working Directory' }).fill(work + '/');
		await page.getByRole('listbox', { name: 'Directories' }).getByRole('option').first().waitFor();
		assert.ok((await overflow()) <= 0, `the form fits 375 px (overflow ${await overflow()}px)`);
		await page.screenshot({ path: screenshotPath('phone-dashboard-new-session') });
		await page.getByRole('button', { name: 'Cancel' }).click();

		const group = page.getByRole('region', { name: `${join(work, 'beta')} on local` });
		await group.getByRole('button', { name: 'Project config' }).focus();
		await page.keyboard.press('Enter');
		const dialog = page.getByRole('dialog', { name: 'Project Config' });
		await dialog.getByText('Editing').waitFor();
		assert.ok((await overflow()) <= 0, `the dialog fits 375 px (overflow ${await overflow()}px)`);
		const box = await dialog.boundingBox();
		assert.ok(box && box.x >= 0 && box.x + box.width <= 375, 'the dialog is inside the viewport');
		await page.screenshot({ path: screenshotPath('phone-project-config') });
		await closeContext(ctx);
	});

	test('performance: a 5,000-message archived session renders from its session file', async () => {
		const record = (await http(stack.base, 'GET', `/api/sessions/${REPLAY_ID}`)).json;
		assert.equal(record.status, 'closed');
		const history = await http(stack.base, 'GET', `/api/sessions/${REPLAY_ID}/history`);
		assert.equal(history.json.messages.length, REPLAY_MESSAGES);

		const runs = [];
		for (let i = 0; i < 3; i++) {
			const ctx = await newPage({ viewport: { width: 1200, height: 800 } });
			const { page } = ctx;
			const started = Date.now();
			await page.goto(`${base}/session/${REPLAY_ID}`);
			await page.locator('.badge.archived').waitFor();
			await page.locator('.msg', { hasText: `message ${REPLAY_MESSAGES} of ${REPLAY_MESSAGES}` }).first().waitFor({ timeout: 60_000 });
			// Since navigation start, in the page's own clock (includes loading the app and the history).
			const inPage = await page.evaluate(() => Math.round(performance.now()));
			runs.push({ wall_ms: Date.now() - started, page_ms: inPage });
			await closeContext(ctx);
		}
		figures.replay_5000_archived = runs;
		figures.replay_5000_archived_median_page_ms = runs.map((r) => r.page_ms).sort((a, b) => a - b)[1];
		console.log(`# perf replay of ${REPLAY_MESSAGES} messages (archived view): ${JSON.stringify(runs)}`);
		mkdirSync(outputDir, { recursive: true });
		writeFileSync(join(outputDir, 'perf-dashboard.json'), JSON.stringify(figures, null, 2));
	});

	test('no request left the machine and the pages raised no errors', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});
