// End-to-end tests of Listen (ui.md "TTS playback") in Debian's chromium against the real piface, pi and fake
// LLM. The first suite answers `/api/health` and `POST …/tts` inside the page (playwright routes) with WAV
// files made here, so the mini-player is tested whatever the cluster runs: pending state, every Listen button
// disabled meanwhile, play/pause, the progress moving, ↺ Restart, the rewind size (hidden, -10s, -15s), one
// player at a time, the error panel, and an archived session. Screenshots go to frontend/test-output/
// (`listen-*`). The second suite runs piface with a TTS model (the tiny VITS fixture of `tts/`, on the CPU) and
// listens for real: `POST …/tts` answers `{cache_key, audio_url, media_type: "audio/mpeg", cached}`, the audio
// plays in chromium and its progress moves; asking again is a cache hit.
//
// PIFACE_E2E_FRESH_UI=1 (or PIFACE_E2E_UI_DIR=<build>) serves a fresh `npm run build`, as in tools.test.mjs.

import assert from 'node:assert/strict';
import { join } from 'node:path';
import { after, before, describe, test } from 'node:test';
import { freshUiProxy, guardedContext, http, launchBrowser, repoRoot, screenshotPath, startStack, waitFor } from './harness.mjs';

/** A mono 8 kHz 8-bit WAV of `seconds` of a quiet 440 Hz tone. */
function wav(seconds, rate = 8000) {
	const n = Math.round(seconds * rate);
	const buf = Buffer.alloc(44 + n);
	buf.write('RIFF', 0);
	buf.writeUInt32LE(36 + n, 4);
	buf.write('WAVEfmt ', 8);
	buf.writeUInt32LE(16, 16);
	buf.writeUInt16LE(1, 20); // PCM
	buf.writeUInt16LE(1, 22); // mono
	buf.writeUInt32LE(rate, 24);
	buf.writeUInt32LE(rate, 28); // bytes per second
	buf.writeUInt16LE(1, 32); // block align
	buf.writeUInt16LE(8, 34); // bits per sample
	buf.write('data', 36);
	buf.writeUInt32LE(n, 40);
	for (let i = 0; i < n; i++) buf[44 + i] = 128 + Math.round(16 * Math.sin((2 * Math.PI * 440 * i) / rate));
	return buf;
}

/** Audio length by the words in the message: long → 100 s (-15s), mid → 30 s (-10s), else 5 s (no rewind). */
function secondsFor(text) {
	return text.includes('long') ? 100 : text.includes('mid') ? 30 : 5;
}

let stack;
let browser;
let proxy = null;
let base;
let sessionId;
const pageErrors = [];
const foreignRequests = [];

/** A logged-in page; `login` is the stack to log in to (the plain one unless told). */
async function newPage(options = {}, login = stack) {
	const { context, foreign } = await guardedContext(browser, options, { login });
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

/** Makes the page's server a TTS one: health says `tts: true`, `POST …/tts` answers after `delayMs` with a
 * WAV sized by the text (texts with "broken" fail with a 500). Returns the request bodies seen. */
async function mockTts(page, { delayMs = 600 } = {}) {
	const requests = [];
	await page.route('**/api/health', (route) => route.fulfill({ json: { status: 'ok', speech: false, tts: true } }));
	await page.route(/\/api\/sessions\/[^/]+\/tts$/, async (route) => {
		const body = route.request().postDataJSON();
		requests.push(body);
		await new Promise((r) => setTimeout(r, delayMs));
		if (body.text.includes('broken')) return route.fulfill({ status: 500, json: { detail: 'the TTS worker crashed' } });
		const seconds = secondsFor(body.text);
		return route.fulfill({ json: { cache_key: `k${requests.length}`, audio_url: `/mock-audio/${seconds}.wav`, media_type: 'audio/wav', cached: false } });
	});
	await page.route('**/mock-audio/*.wav', (route) => {
		const seconds = Number(new URL(route.request().url()).pathname.match(/(\d+)\.wav$/)[1]);
		return route.fulfill({ status: 200, contentType: 'audio/wav', body: wav(seconds) });
	});
	return requests;
}

/** The Listen area of the assistant message that says `echo: <prompt>`. */
function answer(page, prompt) {
	return page.locator('.msg.assistant:not(.live)', { hasText: `echo: ${prompt}` });
}

/** Position of a player's range input, in seconds. */
async function position(player) {
	return Number(await player.getByRole('slider', { name: 'Playback position' }).inputValue());
}

/** Presses Play unless the player already plays (autoplay may be refused once the request took a while). */
async function ensurePlaying(player) {
	const play = player.getByRole('button', { name: 'Play', exact: true });
	if (await play.isVisible()) await play.click();
	await player.getByRole('button', { name: 'Pause', exact: true }).waitFor();
}

describe('Listen mini-player (TTS answers mocked in the page)', { timeout: 300_000 }, () => {
	before(async () => {
		stack = await startStack();
		browser = await launchBrowser(stack.bins);
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		proxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(stack.base, uiDir || undefined) : null;
		base = proxy?.url ?? stack.base;
		const created = await http(stack.base, 'POST', '/api/sessions', { working_dir: stack.project, provider: 'fake', model: 'fake-model', session_name: 'listen', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		sessionId = created.json.piface_id;
	});

	after(async () => {
		await browser?.close();
		await Promise.race([proxy?.close(), new Promise((r) => setTimeout(r, 3000))]);
		await stack?.stop();
	});

	test('Listen → Generating audio… → a player that plays, pauses, restarts and rewinds; one plays at a time', async () => {
		const ctx = await newPage({ viewport: { width: 1100, height: 900 } });
		const { page } = ctx;
		const requests = await mockTts(page);
		await page.goto(`${base}/session/${sessionId}`);
		await page.locator('.badge.conn-open').waitFor();
		const box = page.getByRole('textbox', { name: 'Message', exact: true });
		for (const prompt of ['a mid answer', 'a long answer', 'a short answer', 'a broken answer']) {
			await box.fill(prompt);
			await box.press('Enter');
			await answer(page, prompt).waitFor();
		}

		// Pending: this button says so, every Listen button is disabled.
		const mid = answer(page, 'a mid answer');
		await mid.getByRole('button', { name: 'Listen' }).click();
		await mid.getByRole('button', { name: 'Generating audio…' }).waitFor();
		const listens = page.getByRole('button', { name: 'Listen', exact: true });
		assert.equal(await listens.count(), 3);
		for (const b of await listens.all()) assert.equal(await b.isDisabled(), true, 'every Listen button waits');
		assert.deepEqual(requests.at(-1), { text: 'echo: a mid answer' });

		// The player replaces the button: 30 s of audio, so -10s.
		const midPlayer = mid.getByRole('group', { name: 'Spoken answer' });
		await midPlayer.waitFor();
		assert.equal(await mid.getByRole('button', { name: 'Listen' }).count(), 0);
		await ensurePlaying(midPlayer);
		for (const b of await listens.all()) assert.equal(await b.isDisabled(), false, 'the buttons are back');
		await waitFor(async () => (await position(midPlayer)) > 0.3, { what: 'progress moves' });
		assert.match(await midPlayer.locator('.time').innerText(), /^0:0\d \/ 0:30$/);
		assert.match(await midPlayer.getByRole('slider').getAttribute('aria-valuetext'), /^0:0\d of 0:30$/);
		assert.equal(await midPlayer.getByRole('button', { name: 'Back 10 seconds' }).innerText(), '-10s');
		await page.screenshot({ path: screenshotPath('listen-playing') });

		// Pause holds the position.
		await midPlayer.getByRole('button', { name: 'Pause' }).click();
		await midPlayer.getByRole('button', { name: 'Play', exact: true }).waitFor();
		const paused = await position(midPlayer);
		await page.waitForTimeout(400);
		assert.equal(await position(midPlayer), paused);

		// Seek with the bar, rewind 10 s, then ↺ Restart from the start (and it plays).
		await midPlayer.getByRole('slider').fill('25');
		await waitFor(async () => Math.abs((await position(midPlayer)) - 25) < 0.5, { what: 'seek to 25 s' });
		await midPlayer.getByRole('button', { name: 'Back 10 seconds' }).click();
		await waitFor(async () => Math.abs((await position(midPlayer)) - 15) < 0.5, { what: 'rewind to 15 s' });
		await midPlayer.getByRole('button', { name: 'Restart' }).click();
		await midPlayer.getByRole('button', { name: 'Pause' }).waitFor();
		assert.ok((await position(midPlayer)) < 2, 'restarted from the start');

		// A second message: 100 s, so -15s; starting it pauses the first one.
		const long = answer(page, 'a long answer');
		await long.getByRole('button', { name: 'Listen' }).click();
		const longPlayer = long.getByRole('group', { name: 'Spoken answer' });
		await longPlayer.waitFor();
		await ensurePlaying(longPlayer);
		await midPlayer.getByRole('button', { name: 'Play', exact: true }).waitFor();
		assert.equal(await longPlayer.getByRole('button', { name: 'Back 15 seconds' }).innerText(), '-15s');
		await waitFor(async () => /^0:0\d \/ 1:40$/.test(await longPlayer.locator('.time').innerText()), { what: 'long player time' });
		// Back to the first: the second pauses.
		await midPlayer.getByRole('button', { name: 'Play', exact: true }).click();
		await longPlayer.getByRole('button', { name: 'Play', exact: true }).waitFor();
		await midPlayer.getByRole('button', { name: 'Pause' }).click();

		// Under 20 s: no rewind button; it plays to the end and Play starts it again.
		const short = answer(page, 'a short answer');
		await short.getByRole('button', { name: 'Listen' }).click();
		const shortPlayer = short.getByRole('group', { name: 'Spoken answer' });
		await shortPlayer.waitFor();
		await ensurePlaying(shortPlayer);
		assert.equal(await shortPlayer.getByRole('button', { name: /^Back/ }).count(), 0);
		await shortPlayer.getByRole('slider').fill('4.5');
		await shortPlayer.getByRole('button', { name: 'Play', exact: true }).waitFor({ timeout: 10_000 });
		await waitFor(async () => (await shortPlayer.locator('.time').innerText()) === '0:05 / 0:05', { what: 'ended at 0:05' });

		// A failed request: the error panel, and the button to try again.
		const broken = answer(page, 'a broken answer');
		await broken.getByRole('button', { name: 'Listen' }).click();
		const alert = broken.getByRole('alert');
		await alert.waitFor();
		assert.match(await alert.innerText(), /Listen failed:\s*the TTS worker crashed/);
		assert.equal(await broken.getByRole('button', { name: 'Listen' }).isDisabled(), false);
		await page.screenshot({ path: screenshotPath('listen-players') });
		await closeContext(ctx);
	});

	test('an archived session has Listen too (on a phone-sized screen)', async () => {
		assert.equal((await http(stack.base, 'POST', `/api/sessions/${sessionId}/kill`)).status, 200);
		const ctx = await newPage({ viewport: { width: 390, height: 800 }, isMobile: true, hasTouch: true });
		const { page } = ctx;
		await mockTts(page, { delayMs: 100 });
		await page.goto(`${base}/session/${sessionId}`);
		await page.locator('.badge', { hasText: 'Archived' }).waitFor();
		const mid = answer(page, 'a mid answer');
		await mid.getByRole('button', { name: 'Listen' }).click();
		const player = mid.getByRole('group', { name: 'Spoken answer' });
		await ensurePlaying(player);
		await waitFor(async () => (await position(player)) > 0.3, { what: 'progress moves' });
		const overflow = await page.evaluate(() => document.documentElement.scrollWidth - window.innerWidth);
		assert.ok(overflow <= 0, `the player fits the viewport (overflow ${overflow}px)`);
		await mid.screenshot({ path: screenshotPath('listen-archived-mobile') });
		await closeContext(ctx);
	});

	test('no request left the machine and the pages raised no errors', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});

describe('Listen against the TTS service (tiny VITS fixture)', { timeout: 300_000 }, () => {
	/** A long answer, so that even a tiny model speaks for a while. */
	const PROMPT = 'Please read this aloud. '.repeat(12).trim();
	let tts;
	let ttsProxy = null;
	let ttsBase;

	before(async () => {
		tts = await startStack(undefined, { serverArgs: ['--tts', '--tts-model', join(repoRoot, 'tts/fixtures/tiny_vits'), '--tts-cpu', '--no-speech'] });
		browser = await launchBrowser(tts.bins);
		const uiDir = process.env.PIFACE_E2E_UI_DIR;
		ttsProxy = process.env.PIFACE_E2E_FRESH_UI || uiDir ? await freshUiProxy(tts.base, uiDir || undefined) : null;
		ttsBase = ttsProxy?.url ?? tts.base;
		await waitFor(async () => (await http(tts.base, 'GET', '/api/health')).json?.tts === true, { timeout: 120_000, what: 'the TTS model is ready' });
	});

	after(async () => {
		await browser?.close();
		await Promise.race([ttsProxy?.close(), new Promise((r) => setTimeout(r, 3000))]);
		await tts?.stop();
	});

	test('Listen plays the spoken answer and its progress moves; a second request is a cache hit', async () => {
		const created = await http(tts.base, 'POST', '/api/sessions', { working_dir: tts.project, provider: 'fake', model: 'fake-model', session_name: 'listen for real', shared: true });
		assert.equal(created.status, 201, JSON.stringify(created.json));
		const id = created.json.piface_id;
		const ctx = await newPage({ viewport: { width: 1000, height: 800 } }, tts);
		const { page } = ctx;
		await page.goto(`${ttsBase}/session/${id}`);
		await page.locator('.badge.conn-open').waitFor();
		const box = page.getByRole('textbox', { name: 'Message', exact: true });
		await box.fill(PROMPT);
		await box.press('Enter');
		const msg = answer(page, PROMPT);
		await msg.waitFor();

		const replied = page.waitForResponse((r) => r.request().method() === 'POST' && /\/api\/sessions\/[^/]+\/tts$/.test(new URL(r.url()).pathname), { timeout: 120_000 });
		await msg.getByRole('button', { name: 'Listen' }).click();
		await msg.getByRole('button', { name: 'Generating audio…' }).waitFor();
		const res = await replied;
		assert.equal(res.status(), 200, await res.text());
		const body = await res.json();
		assert.equal(body.media_type, 'audio/mpeg');
		assert.equal(body.cached, false);
		assert.equal(typeof body.cache_key, 'string');
		assert.equal(typeof body.audio_url, 'string');

		const player = msg.getByRole('group', { name: 'Spoken answer' });
		await player.waitFor({ timeout: 60_000 });
		await waitFor(async () => /^\d+:\d\d \/ \d+:\d\d$/.test(await player.locator('.time').innerText()), { what: 'a known duration' });
		await ensurePlaying(player);
		await waitFor(async () => (await position(player)) > 0.2, { what: 'progress moves' });
		await page.screenshot({ path: screenshotPath('listen-real') });

		// The same text again (a fresh page): the server answers from its cache.
		const again = await http(tts.base, 'POST', `/api/sessions/${id}/tts`, { text: `echo: ${PROMPT}` });
		assert.equal(again.status, 200, JSON.stringify(again.json));
		assert.equal(again.json.cached, true);
		assert.equal(again.json.cache_key, body.cache_key);
		await closeContext(ctx);
	});

	test('no request left the machine and the pages raised no errors (TTS service)', () => {
		assert.deepEqual(foreignRequests, []);
		assert.deepEqual(pageErrors, []);
	});
});
