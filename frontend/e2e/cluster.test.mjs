// End-to-end tests of the UI against a cluster in Debian's chromium: `piface coordinator` and two
// `piface agent` processes on loopback (harness.mjs `startCluster`), the real pi and the fake LLM.
//
// "New from defaults" on a session of a remote agent creates the copy on that agent (issue 19: the body was
// written by hand without `agent`, so the copy landed on the default agent, or was refused with several up).
//
// Like the other suites, PIFACE_E2E_FRESH_UI=1 (serves frontend/build) or PIFACE_E2E_UI_DIR=<a build folder>
// tests a fresh UI build through harness.mjs `freshUiProxy` instead of the UI the binary embeds.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freshUiProxy, guardedContext, http, launchBrowser, screenshotPath, startCluster, waitFor } from './harness.mjs';

const AGENTS = ['alpha', 'box'];

let stack;
let proxy;
let base;
let browser;
const foreignRequests = [];
const pageErrors = [];

describe('piface cluster UI', { timeout: 300_000 }, () => {
	before(async () => {
		stack = await startCluster(AGENTS);
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

	test('both agents are up and the coordinator has no local agent', async () => {
		const agents = (await http(stack.base, 'GET', '/api/agents')).json.agents;
		assert.deepEqual(agents.map((a) => [a.name, a.status]).sort(), AGENTS.map((n) => [n, 'up']));
	});

	test('New from defaults on a session of the second agent creates the copy on that agent', async () => {
		const remote = AGENTS[1];
		const created = await http(stack.base, 'POST', '/api/sessions', {
			working_dir: stack.project,
			shared: true,
			agent: remote,
			provider: 'fake',
			model: 'fake-model',
			session_name: 'original'
		});
		assert.equal(created.status, 201, JSON.stringify(created.json));
		const original = created.json;
		assert.equal(original.agent, remote);

		const { context, foreign } = await guardedContext(browser, { viewport: { width: 1100, height: 800 } }, { login: stack });
		const page = await context.newPage();
		page.on('pageerror', (e) => pageErrors.push(String(e)));
		await page.goto(`${base}/session/${encodeURIComponent(original.piface_id)}`);
		await page.locator('.session-name', { hasText: 'original' }).waitFor();
		const button = page.getByRole('button', { name: 'New from defaults' });
		await waitFor(() => button.isEnabled(), { what: 'New from defaults enabled' });
		await button.click();
		const dialog = page.getByRole('dialog');
		await dialog.getByRole('textbox').fill('the copy');
		await dialog.getByRole('button', { name: 'Create' }).click();

		// The page moves to the new session; an error would stay on this one.
		const copyId = await waitFor(
			async () => {
				const id = decodeURIComponent(new URL(page.url()).pathname.split('/session/')[1] ?? '');
				if (id && id !== original.piface_id) return id;
				const error = await page.locator('.error, [role="alert"]').allInnerTexts();
				return error.length ? Promise.reject(new Error(`no new session; the page says: ${error.join(' | ')}`)) : null;
			},
			{ what: 'the page of the new session' }
		);
		await page.locator('.session-name', { hasText: 'the copy' }).waitFor();
		await page.screenshot({ path: screenshotPath('cluster-new-from-defaults') });

		const sessions = (await http(stack.base, 'GET', '/api/sessions')).json;
		const list = Array.isArray(sessions) ? sessions : (sessions.sessions ?? []);
		const copy = list.find((s) => s.piface_id === copyId);
		assert.ok(copy, `the new session ${copyId} is listed: ${JSON.stringify(list.map((s) => s.piface_id))}`);
		assert.equal(copy.agent, remote, `the copy runs on ${remote}`);
		assert.equal(copy.session_name, 'the copy');
		assert.equal(copy.model_id, 'fake-model');
		assert.equal(copy.working_dir, stack.project);
		assert.equal(list.length, 2);

		foreignRequests.push(...foreign);
		await context.close();
	});

	test('no foreign requests or CSP violations, no page errors', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});
