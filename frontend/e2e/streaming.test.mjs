// End-to-end test of compact streaming (issue "Lean streaming"): two clients watch the same 5,000-token turn
// from the fake LLM. One is the web UI, which connects with `?mode=compact` and rebuilds each partial message
// from `piface_patch`; the other is a raw WebSocket in a second page, without the query, so it gets pi's
// events unchanged (the whole partial twice in every `message_update`). Both must end with the same text,
// and the compact client must have received under 1 % of the full client's bytes for the turn. The UI must
// also have re-rendered the streaming bubble at most once per animation frame, not once per token.
//
// Bytes are counted in the pages as the lengths of the received frames' `event.data` (the UI page's
// WebSocket is wrapped by an init script). Like tools.test.mjs, PIFACE_E2E_FRESH_UI=1 (or
// PIFACE_E2E_UI_DIR=<build>) serves a fresh `npm run build` through a loopback proxy instead of the UI the
// binary embeds; the raw client always talks to piface directly.

import assert from 'node:assert/strict';
import { after, before, describe, test } from 'node:test';
import { freshUiProxy, guardedContext, http, launchBrowser, screenshotPath, startStack, waitFor } from './harness.mjs';

const TOKENS = 5000;
/** What the fake LLM answers to `[[tokens:N]]`: `t0 t1 … t{N-1} `. */
const EXPECTED = Array.from({ length: TOKENS }, (_, i) => `t${i}`).join(' ');

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

/** Counts what the page's session sockets receive, in `window.__ws`; notes `agent_end`. */
function countSessionSockets() {
	const Native = window.WebSocket;
	const stats = { urls: [], bytes: 0, frames: 0, patches: 0, agentEnd: false };
	window.__ws = stats;
	window.WebSocket = class extends Native {
		constructor(url, protocols) {
			super(url, protocols);
			if (!String(url).includes('/ws/sessions/')) return;
			stats.urls.push(String(url));
			this.addEventListener('message', (e) => {
				if (typeof e.data !== 'string') return;
				stats.bytes += e.data.length;
				stats.frames += 1;
				try {
					const f = JSON.parse(e.data);
					if (f.piface_patch) stats.patches += 1;
					if (f.type === 'agent_end') stats.agentEnd = true;
				} catch {
					// Not JSON: counted all the same.
				}
			});
		}
	};
}

/** Counts animation frames and the batches of DOM changes inside the streaming bubble, in `window.__render`,
 * while `counting` is on. */
function countLiveRenders() {
	const stats = { counting: false, frames: 0, liveBatches: 0 };
	window.__render = stats;
	const tick = () => {
		if (stats.counting) stats.frames += 1;
		requestAnimationFrame(tick);
	};
	requestAnimationFrame(tick);
	new MutationObserver((records) => {
		if (stats.counting && records.some((r) => (r.target instanceof Element ? r.target : r.target.parentElement)?.closest('.msg.assistant.live'))) stats.liveBatches += 1;
	}).observe(document, { subtree: true, childList: true, characterData: true });
}

/** Opens a full-mode socket in the page (which must be same-origin with piface); stats in `window.__raw`. */
function openRawSocket(url) {
	return new Promise((resolve, reject) => {
		const stats = { bytes: 0, frames: 0, updatesWithMessage: 0, patches: 0, agentEnd: false, final: null, replays: 0 };
		window.__raw = stats;
		const textOf = (m) => (Array.isArray(m?.content) ? m.content.filter((p) => p.type === 'text').map((p) => p.text).join('') : String(m?.content ?? ''));
		const ws = new WebSocket(url);
		window.__rawSocket = ws;
		ws.onmessage = (e) => {
			stats.bytes += e.data.length;
			stats.frames += 1;
			const f = JSON.parse(e.data);
			if (f.piface_patch) stats.patches += 1;
			if (f.type === 'message_update' && f.message) stats.updatesWithMessage += 1;
			if (f.type === 'message_end' && f.message?.role === 'assistant') stats.final = textOf(f.message);
			if (f.type === 'piface_replay') stats.replays += 1;
			if (f.type === 'agent_end') stats.agentEnd = true;
		};
		ws.onopen = () => resolve();
		ws.onerror = () => reject(new Error('raw socket failed'));
	});
}

describe('compact streaming', { timeout: 300_000 }, () => {
	before(async () => {
		stack = await startStack();
		browser = await launchBrowser(stack.bins);
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		proxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(stack.base, uiDir || undefined) : null;
		base = proxy?.url ?? stack.base;
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: stack.project, provider: 'fake', model: 'fake-model', session_name: 'streaming', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		sessionId = created.json.piface_id;
	});

	after(async () => {
		await browser?.close();
		await Promise.race([proxy?.close(), new Promise((r) => setTimeout(r, 3000))]);
		await stack?.stop();
	});

	test(`a ${TOKENS.toLocaleString('en')}-token turn: the UI in compact mode gets under 1 % of a full client's bytes, and the same text`, async () => {
		const ui = await newPage({ viewport: { width: 1000, height: 800 } });
		await ui.context.addInitScript(countSessionSockets);
		await ui.context.addInitScript(countLiveRenders);
		await ui.page.goto(`${base}/session/${sessionId}`);
		await ui.page.locator('.badge.conn-open').waitFor();

		const raw = await newPage();
		await raw.page.goto(`${stack.base}/api/health`);
		const wsUrl = `${stack.base.replace(/^http/, 'ws')}/ws/sessions/${sessionId}`;
		await raw.page.evaluate(openRawSocket, wsUrl);
		// The raw client asks for no history: its first frame is piface_session_state. From here on only the
		// turn counts.
		await waitFor(() => raw.page.evaluate(() => window.__raw.frames > 0), { what: 'the raw client connected' });
		await ui.page.evaluate(() => Object.assign(window.__ws, { bytes: 0, frames: 0, patches: 0, agentEnd: false }));
		await ui.page.evaluate(() => Object.assign(window.__render, { counting: true, frames: 0, liveBatches: 0 }));
		await raw.page.evaluate(() => Object.assign(window.__raw, { bytes: 0, frames: 0, updatesWithMessage: 0, patches: 0 }));

		const started = Date.now();
		const box = ui.page.getByRole('textbox', { name: 'Message', exact: true });
		await box.fill(`[[tokens:${TOKENS}]]`);
		await box.press('Enter');

		const answer = ui.page.locator('.msg.assistant:not(.live)', { hasText: `t${TOKENS - 1}` });
		await answer.waitFor({ timeout: 180_000 });
		await waitFor(() => raw.page.evaluate(() => window.__raw.agentEnd), { timeout: 180_000, what: 'the raw client sees agent_end' });
		await waitFor(() => ui.page.evaluate(() => window.__ws.agentEnd), { timeout: 30_000, what: 'the UI sees agent_end' });
		const seconds = (Date.now() - started) / 1000;
		const render = await ui.page.evaluate(() => Object.assign(window.__render, { counting: false }));

		const shown = (await answer.locator('.markdown').innerText()).trim();
		const rawStats = await raw.page.evaluate(() => window.__raw);
		const uiStats = await ui.page.evaluate(() => window.__ws);
		assert.equal(shown, EXPECTED, 'the UI shows the whole answer');
		assert.equal(rawStats.final?.trim(), EXPECTED, "the raw client's last message_end has the same text");
		assert.equal(await ui.page.locator('.msg.assistant.live').count(), 0, 'no streaming bubble is left');
		console.log(`# streaming bubble: ${render.liveBatches} renders in ${render.frames} animation frames`);
		assert.ok(render.liveBatches > 0, 'the answer streamed through the live bubble');
		assert.ok(render.liveBatches <= render.frames + 2, `at most one render per frame (${render.liveBatches} renders, ${render.frames} frames)`);
		assert.ok(render.liveBatches < TOKENS / 5, `far fewer renders than tokens (${render.liveBatches})`);

		assert.ok(uiStats.urls.length > 0 && uiStats.urls.every((u) => u.endsWith('?mode=compact')), `the UI asks for compact mode (${uiStats.urls})`);
		assert.ok(uiStats.patches > TOKENS / 2, `the UI got compact updates (${uiStats.patches} patches)`);
		assert.equal(rawStats.patches, 0, 'the raw client got no patches');
		assert.ok(rawStats.updatesWithMessage > TOKENS / 2, `the raw client got full updates (${rawStats.updatesWithMessage})`);
		const ratio = uiStats.bytes / rawStats.bytes;
		console.log(`# streaming ${TOKENS} tokens in ${seconds.toFixed(1)} s: compact ${uiStats.bytes} B in ${uiStats.frames} frames, full ${rawStats.bytes} B in ${rawStats.frames} frames, ratio ${(ratio * 100).toFixed(3)} %`);
		assert.ok(ratio < 0.01, `compact is under 1 % of full (${uiStats.bytes} / ${rawStats.bytes} = ${(ratio * 100).toFixed(3)} %)`);

		await ui.page.screenshot({ path: screenshotPath('streaming-compact') });
		for (const c of [ui, raw]) {
			foreignRequests.push(...c.foreign);
			await c.context.close();
		}
	});

	test('no request left the machine and the pages raised no errors', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});
