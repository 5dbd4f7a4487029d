// End-to-end harness: the real `piface` binary, the real pi, the fake LLM of `test-support`, and Debian's
// chromium driven by playwright-core. Everything runs on loopback with temporary directories; nothing is
// downloaded. Binaries come from `target/debug` (override with PIFACE_BIN, FAKE_LLM_BIN, PIFACE_TEST_PI,
// CHROMIUM_BIN); build them first (see frontend/README or scripts/test.sh).

import { spawn, execFileSync } from 'node:child_process';
import { existsSync, mkdirSync, mkdtempSync, copyFileSync, writeFileSync, rmSync, readFileSync, statSync } from 'node:fs';
import { createServer, request as httpRequest } from 'node:http';
import { connect as netConnect } from 'node:net';
import { tmpdir } from 'node:os';
import { dirname, extname, join, resolve } from 'node:path';
import { createInterface } from 'node:readline';
import { fileURLToPath } from 'node:url';
import { chromium } from 'playwright-core';

const here = dirname(fileURLToPath(import.meta.url));
export const frontendDir = resolve(here, '..');
export const repoRoot = resolve(frontendDir, '..');
export const outputDir = join(frontendDir, 'test-output');

function firstExisting(...paths) {
	return paths.find((p) => p && existsSync(p));
}

export function binaries() {
	const piface = process.env.PIFACE_BIN || join(repoRoot, 'target/debug/piface');
	const fakeLlm = process.env.FAKE_LLM_BIN || join(repoRoot, 'target/debug/fake-llm');
	for (const [name, p] of [['piface', piface], ['fake-llm', fakeLlm]]) {
		if (!existsSync(p)) throw new Error(`${name} not found at ${p}: run cargo build -p piface-coordinator --bin piface && cargo build -p piface-test-support --bin fake-llm`);
	}
	let pi = firstExisting(process.env.PIFACE_TEST_PI, join(repoRoot, '.pi-runtime/node_modules/.bin/pi'));
	if (!pi) {
		const out = execFileSync('bash', [join(repoRoot, 'scripts/install-pi.sh')], { encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
		pi = out.trim().split('\n').pop();
	}
	const chromiumBin = firstExisting(process.env.CHROMIUM_BIN, '/usr/bin/chromium', '/usr/bin/chromium-browser');
	if (!chromiumBin) throw new Error('chromium not found: apt-get install -y chromium (or set CHROMIUM_BIN)');
	return { piface, fakeLlm, pi, chromium: chromiumBin };
}

/** Spawns a server that prints `listening on http://…` as its first stdout line; resolves to its URL. */
function startListening(bin, args, env, label) {
	const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
	let stderr = '';
	child.stderr.on('data', (d) => {
		stderr += d;
		if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
	});
	const lines = createInterface({ input: child.stdout });
	return new Promise((resolvePromise, reject) => {
		const timer = setTimeout(() => reject(new Error(`${label} did not start:\n${stderr}`)), 30_000);
		child.once('exit', (code) => reject(new Error(`${label} exited (${code}):\n${stderr}`)));
		lines.once('line', (line) => {
			clearTimeout(timer);
			const m = /listening on (http:\/\/\S+)/.exec(line);
			if (!m) return reject(new Error(`${label}: unexpected first line ${line}`));
			resolvePromise({ url: m[1], child, stderr: () => stderr });
		});
	});
}

/** A private HOME and pi agent dir wired to the fake LLM (what test-support's PiEnv writes), plus the
 * confirm extension. Returns the environment for piface (and so for the pis it starts). */
export function piEnv(root, llmUrl) {
	const home = join(root, 'home');
	const agentDir = join(home, '.pi', 'agent');
	mkdirSync(join(agentDir, 'extensions'), { recursive: true });
	const models = {
		providers: {
			fake: {
				baseUrl: `${llmUrl}/v1`,
				api: 'openai-completions',
				apiKey: 'test-key',
				compat: { supportsDeveloperRole: false, supportsReasoningEffort: false, supportsStore: false, supportsStrictMode: false, supportsUsageInStreaming: true },
				models: [{ id: 'fake-model', name: 'Fake Model', reasoning: false, input: ['text'], contextWindow: 128000, maxTokens: 16384, cost: { input: 0, output: 0, cacheRead: 0, cacheWrite: 0 } }]
			}
		}
	};
	const settings = {
		defaultProvider: 'fake',
		defaultModel: 'fake-model',
		defaultThinkingLevel: 'off',
		enableInstallTelemetry: false,
		quietStartup: true,
		retry: { enabled: false, provider: { maxRetries: 0 } },
		compaction: { enabled: false }
	};
	writeFileSync(join(agentDir, 'models.json'), JSON.stringify(models, null, 2));
	writeFileSync(join(agentDir, 'settings.json'), JSON.stringify(settings, null, 2));
	copyFileSync(join(here, 'fixtures/confirm-extension.ts'), join(agentDir, 'extensions/confirm-extension.ts'));
	const env = { ...process.env, HOME: home, PI_CODING_AGENT_DIR: agentDir, PI_OFFLINE: '1', PI_SKIP_VERSION_CHECK: '1', PI_TELEMETRY: '0' };
	delete env.PI_CODING_AGENT_SESSION_DIR;
	return { env, home, agentDir };
}

/** Starts the fake LLM and piface; returns handles and a `stop()`. `seed({ root, home, project, dataDir })`,
 * when given, runs just before piface starts: e.g. to write an original-format `state.json` into `dataDir`,
 * which piface imports on its first start. `serverArgs` go to `piface serve` after the harness's own (e.g. a
 * TTS model). */
export async function startStack(seed, { serverArgs = [] } = {}) {
	const bins = binaries();
	const root = mkdtempSync(join(tmpdir(), 'piface-e2e-'));
	const llm = await startListening(bins.fakeLlm, ['--port', '0'], process.env, 'fake-llm');
	const { env, home } = piEnv(root, llm.url);
	const project = join(root, 'project');
	mkdirSync(project);
	writeFileSync(join(project, 'README.md'), '# demo project\n');
	const dataDir = join(root, 'data');
	mkdirSync(dataDir);
	if (seed) await seed({ root, home, project, dataDir });
	const server = await startListening(
		bins.piface,
		['serve', '--port', '0', '--host', '127.0.0.1', '--no-direnv', '--data-dir', dataDir, '--pi-bin', bins.pi, ...serverArgs],
		{ ...env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
		'piface'
	);
	const stop = async () => {
		for (const c of [server.child, llm.child]) {
			if (c.exitCode === null) {
				c.kill('SIGTERM');
				await new Promise((r) => {
					const t = setTimeout(() => {
						c.kill('SIGKILL');
						r();
					}, 8000);
					c.once('exit', () => {
						clearTimeout(t);
						r();
					});
				});
			}
		}
		rmSync(root, { recursive: true, force: true });
	};
	return { bins, root, home, project, dataDir, base: server.url, server, llm, stop };
}

/** Chromium with the flags this sandbox needs and a fresh profile (playwright makes one per launch). */
export async function launchBrowser(bins) {
	return chromium.launch({
		executablePath: bins.chromium,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage']
	});
}

/** A browser context that records (and blocks) every request to a non-local host. */
export async function guardedContext(browser, options = {}) {
	const context = await browser.newContext(options);
	const foreign = [];
	await context.route('**/*', (route) => {
		const url = new URL(route.request().url());
		if (['127.0.0.1', 'localhost', '[::1]'].includes(url.hostname)) return route.continue();
		foreign.push(url.href);
		return route.abort();
	});
	context.on('request', (req) => {
		const u = req.url();
		if (/^(https?|wss?):/.test(u)) {
			const host = new URL(u).hostname;
			if (!['127.0.0.1', 'localhost', '[::1]'].includes(host)) foreign.push(u);
		}
	});
	return { context, foreign };
}

/** JSON over HTTP against piface. */
export async function http(base, method, path, body) {
	const res = await fetch(base + path, {
		method,
		headers: body === undefined ? {} : { 'content-type': 'application/json' },
		body: body === undefined ? undefined : JSON.stringify(body)
	});
	const text = await res.text();
	let json = null;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {
		json = text;
	}
	return { status: res.status, json, headers: res.headers };
}

export async function waitFor(fn, { timeout = 30_000, interval = 100, what = 'condition' } = {}) {
	const end = Date.now() + timeout;
	let last;
	while (Date.now() < end) {
		try {
			last = await fn();
			if (last) return last;
		} catch (e) {
			last = e;
		}
		await new Promise((r) => setTimeout(r, interval));
	}
	throw new Error(`timed out waiting for ${what} (last: ${last instanceof Error ? last.message : JSON.stringify(last)})`);
}

export function screenshotPath(name) {
	mkdirSync(outputDir, { recursive: true });
	return join(outputDir, `${name}.png`);
}

const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json', '.webp': 'image/webp', '.png': 'image/png', '.woff2': 'font/woff2' };

/** Serves a UI build (`frontend/build` by default) on a loopback port and forwards `/api/…` and `/ws/…`
 * (WebSocket upgrades included) to piface at `base`. Host and Origin pass through unchanged, so piface's
 * same-origin check sees one origin. This runs the UI e2e against a fresh `npm run build` when the binary
 * still embeds an older one (the binary embeds the UI at compile time). Resolves to `{ url, close }`. */
export async function freshUiProxy(base, dir = join(frontendDir, 'build')) {
	const target = new URL(base);
	dir = resolve(dir);
	const shell = join(dir, '200.html');
	if (!existsSync(shell)) throw new Error(`no UI build at ${dir}: run npm run build`);
	const isApi = (url) => /^\/(api|ws)\//.test(url);
	const server = createServer((req, res) => {
		if (isApi(req.url)) {
			const up = httpRequest({ host: target.hostname, port: target.port, method: req.method, path: req.url, headers: req.headers }, (r) => {
				res.writeHead(r.statusCode ?? 502, r.headers);
				r.pipe(res);
			});
			up.on('error', (e) => {
				res.writeHead(502, { 'content-type': 'application/json' });
				res.end(JSON.stringify({ detail: String(e) }));
			});
			req.pipe(up);
			return;
		}
		const path = decodeURIComponent(new URL(req.url, 'http://x').pathname);
		let file = resolve(dir, '.' + path);
		if (!file.startsWith(dir) || !existsSync(file) || !statSync(file).isFile()) {
			if (path.startsWith('/_app/')) {
				res.writeHead(404).end();
				return;
			}
			file = shell;
		}
		res.writeHead(200, { 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
		res.end(readFileSync(file));
	});
	// Upgraded sockets are not the server's any more: track them so `close` can end them too.
	const tunnels = new Set();
	server.on('upgrade', (req, socket, head) => {
		const up = netConnect(Number(target.port), target.hostname, () => {
			const lines = [`${req.method} ${req.url} HTTP/1.1`];
			for (let i = 0; i < req.rawHeaders.length; i += 2) lines.push(`${req.rawHeaders[i]}: ${req.rawHeaders[i + 1]}`);
			up.write(lines.join('\r\n') + '\r\n\r\n');
			if (head?.length) up.write(head);
			socket.pipe(up).pipe(socket);
		});
		const end = () => {
			socket.destroy();
			up.destroy();
			tunnels.delete(end);
		};
		tunnels.add(end);
		up.on('error', end);
		socket.on('error', end);
		up.on('close', end);
		socket.on('close', end);
	});
	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	const { port } = server.address();
	return {
		url: `http://127.0.0.1:${port}`,
		close: () =>
			new Promise((r) => {
				for (const end of [...tunnels]) end();
				server.closeAllConnections?.();
				server.close(() => r());
			})
	};
}
