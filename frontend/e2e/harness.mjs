// End-to-end harness: the real `piface` binary, the real pi, the fake LLM of `test-support`, and Debian's
// chromium driven by playwright-core. Everything runs on loopback with temporary directories; nothing is
// downloaded. Binaries come from `target/debug`, or `$CARGO_TARGET_DIR/debug` when that is set (override each with
// PIFACE_BIN, FAKE_LLM_BIN, PIFACE_TEST_PI, CHROMIUM_BIN); build them first (see frontend/README or scripts/test.sh).
//
// Login is on, as for users: `startStack` reads the `login:` line piface prints and keeps its token;
// `guardedContext(browser, options, { login: stack })` logs a browser context in by visiting that login URL
// (the server's redirect sets the cookie), and `http`/`authHeaders` send the token as a bearer header.
// Every context records requests outside its origin and Content-Security-Policy violations in `foreign`,
// which each suite asserts empty at its end.

import { spawn, execFileSync } from 'node:child_process';
import { createHash } from 'node:crypto';
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
	// Cargo's own variable moves the default, so a build with CARGO_TARGET_DIR=… is found without naming each binary.
	const debug = join(resolve(repoRoot, process.env.CARGO_TARGET_DIR || 'target'), 'debug');
	const piface = process.env.PIFACE_BIN || join(debug, 'piface');
	const fakeLlm = process.env.FAKE_LLM_BIN || join(debug, 'fake-llm');
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

/** Spawns a server that prints `listening on http://…` as its first stdout line; resolves to its URL, the
 * child, its stderr so far and `nextLine(re, ms)`, which waits for a later stdout line matching `re`. */
function startListening(bin, args, env, label) {
	const child = spawn(bin, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
	let stderr = '';
	child.stderr.on('data', (d) => {
		stderr += d;
		if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
	});
	const lines = createInterface({ input: child.stdout });
	const seen = [];
	const waiters = new Set();
	lines.on('line', (line) => {
		seen.push(line);
		for (const w of [...waiters]) w(line);
	});
	/** The first stdout line matching `re` (already printed or still to come). */
	const nextLine = (re, ms = 10_000) =>
		new Promise((resolveLine, rejectLine) => {
			const hit = seen.find((l) => re.test(l));
			if (hit) return resolveLine(hit);
			const timer = setTimeout(() => {
				waiters.delete(w);
				rejectLine(new Error(`${label}: no stdout line matching ${re} within ${ms} ms (saw: ${JSON.stringify(seen)})\n${stderr}`));
			}, ms);
			const w = (line) => {
				if (!re.test(line)) return;
				clearTimeout(timer);
				waiters.delete(w);
				resolveLine(line);
			};
			waiters.add(w);
		});
	return new Promise((resolvePromise, reject) => {
		const timer = setTimeout(() => reject(new Error(`${label} did not start:\n${stderr}`)), 30_000);
		child.once('exit', (code) => reject(new Error(`${label} exited (${code}):\n${stderr}`)));
		lines.once('line', (line) => {
			clearTimeout(timer);
			const m = /listening on (http:\/\/\S+)/.exec(line);
			if (!m) return reject(new Error(`${label}: unexpected first line ${line}`));
			resolvePromise({ url: m[1], child, stderr: () => stderr, nextLine });
		});
	});
}

/** The login token of each piface started here, by base URL (what `http` and `authHeaders` send). */
const tokens = new Map();

/** `Authorization: Bearer <token>` for the piface at `base` (nothing when it needs no login). */
export function authHeaders(base) {
	const token = tokens.get(new URL(base).origin);
	return token ? { authorization: `Bearer ${token}` } : {};
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
	// `--auth none` (or tailscale) prints no login line; the default, token, does.
	const authAt = serverArgs.indexOf('--auth');
	const authMode = authAt >= 0 ? serverArgs[authAt + 1] : (serverArgs.find((a) => a.startsWith('--auth='))?.slice('--auth='.length) ?? 'token');
	const tokenMode = authMode === 'token';
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
		// Sessions must lie inside the agent's file roots: home (the default, `root/home` here) and the project.
		['serve', '--port', '0', '--host', '127.0.0.1', '--no-direnv', '--data-dir', dataDir, '--pi-bin', bins.pi, ...(serverArgs.includes('--fs-root') ? [] : ['--fs-root', home, '--fs-root', project]), ...serverArgs],
		{ ...env, RUST_LOG: process.env.RUST_LOG ?? 'info' },
		'piface'
	);
	let token = null;
	let loginUrl = null;
	if (tokenMode) {
		const line = await server.nextLine(/^login: /);
		loginUrl = line.slice('login: '.length).trim();
		token = new URL(loginUrl).searchParams.get('token');
		if (!/^[0-9a-f]{64}$/.test(token ?? '')) throw new Error(`piface printed an unexpected login line: ${line}`);
		tokens.set(new URL(server.url).origin, token);
	}
	const stop = async () => {
		for (const c of [server.child, llm.child]) await stopChild(c);
		rmSync(root, { recursive: true, force: true });
	};
	return { bins, root, home, project, dataDir, base: server.url, token, loginUrl, server, llm, stop };
}

/** SIGTERM, then SIGKILL after 8 s; resolves when the process is gone. */
async function stopChild(c) {
	if (c.exitCode !== null || c.signalCode !== null) return;
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

/** A cluster on loopback, as coordinator/tests/cluster.rs starts one: the fake LLM, `piface coordinator`
 * (no local agent; QUIC for agents on 127.0.0.1) and one `piface agent` per name in `agentNames`, each with
 * its own HOME, pi agent dir and data dir, joined with a single-use token from `piface token create` read
 * from a file, and with the shared `project` as a file root. Resolves once every agent is up in
 * `GET /api/agents`. Returns the same handles as `startStack` (`base`, `loginUrl`, `project`, `stop`…) plus
 * `agents` (name → `{ child, stderr() }`). */
export async function startCluster(agentNames) {
	const bins = binaries();
	const root = mkdtempSync(join(tmpdir(), 'piface-e2e-cluster-'));
	const children = [];
	const stop = async () => {
		for (const c of children.reverse()) await stopChild(c);
		rmSync(root, { recursive: true, force: true });
	};
	try {
		const llm = await startListening(bins.fakeLlm, ['--port', '0'], process.env, 'fake-llm');
		children.push(llm.child);
		const project = join(root, 'project');
		mkdirSync(project);
		writeFileSync(join(project, 'README.md'), '# demo project\n');
		const dataDir = join(root, 'coordinator-data');
		mkdirSync(dataDir);
		const { env, home } = piEnv(join(root, 'coordinator'), llm.url);
		const logEnv = { RUST_LOG: process.env.RUST_LOG ?? 'info' };
		const server = await startListening(
			bins.piface,
			['coordinator', '--port', '0', '--host', '127.0.0.1', '--quic', '127.0.0.1:0', '--no-direnv', '--data-dir', dataDir, '--pi-bin', bins.pi],
			{ ...env, ...logEnv },
			'piface coordinator'
		);
		children.push(server.child);
		const loginUrl = (await server.nextLine(/^login: /)).slice('login: '.length).trim();
		const token = new URL(loginUrl).searchParams.get('token');
		if (!/^[0-9a-f]{64}$/.test(token ?? '')) throw new Error(`piface coordinator printed an unexpected login URL: ${loginUrl}`);
		tokens.set(new URL(server.url).origin, token);
		const quic = /^agents connect to (\S+)/.exec(await server.nextLine(/^agents connect to /))[1];
		const agents = {};
		for (const name of agentNames) {
			const agentRoot = join(root, `agent-${name}`);
			const agentData = join(agentRoot, 'data');
			mkdirSync(agentData, { recursive: true });
			const tokenFile = join(agentRoot, 'join-token');
			const joinToken = execFileSync(bins.piface, ['token', 'create', '--ttl', '10m', '--data-dir', dataDir], { encoding: 'utf8' }).trim();
			writeFileSync(tokenFile, joinToken + '\n', { mode: 0o600 });
			const agentEnv = piEnv(agentRoot, llm.url);
			const child = spawn(
				bins.piface,
				['agent', '--coordinator', quic, '--token-file', tokenFile, '--name', name, '--data-dir', agentData, '--pi-bin', bins.pi, '--fs-root', agentEnv.home, '--fs-root', project, '--no-speech', '--no-tts'],
				{ env: { ...agentEnv.env, ...logEnv }, stdio: ['ignore', 'ignore', 'pipe'] }
			);
			children.push(child);
			let stderr = '';
			child.stderr.on('data', (d) => {
				stderr += d;
				if (stderr.length > 200_000) stderr = stderr.slice(-100_000);
			});
			agents[name] = { child, stderr: () => stderr };
		}
		await waitFor(
			async () => {
				for (const [name, a] of Object.entries(agents)) if (a.child.exitCode !== null) throw new Error(`agent ${name} exited (${a.child.exitCode}):\n${a.stderr()}`);
				const list = (await http(server.url, 'GET', '/api/agents')).json?.agents ?? [];
				return agentNames.every((n) => list.some((a) => a.name === n && a.status === 'up'));
			},
			{ what: `agents ${agentNames.join(', ')} up` }
		);
		return { bins, root, home, project, dataDir, base: server.url, token, loginUrl, server, llm, agents, stop };
	} catch (e) {
		await stop();
		throw e;
	}
}

/** Chromium with the flags this sandbox needs and a fresh profile (playwright makes one per launch); `args`
 * adds flags (e.g. `--host-resolver-rules=…` to reach a proxy under a made-up name). */
export async function launchBrowser(bins, { args = [] } = {}) {
	return chromium.launch({
		executablePath: bins.chromium,
		headless: true,
		args: ['--no-sandbox', '--disable-gpu', '--disable-quic', '--no-first-run', '--disable-background-networking', '--disable-component-update', '--disable-sync', '--disable-dev-shm-usage', ...args]
	});
}

/** The host names a context may reach unless told others. */
const LOCAL_HOSTS = ['127.0.0.1', 'localhost', '[::1]'];

/** A browser context that records (and blocks) every request to a host not in `hosts`, and records every
 * Content-Security-Policy violation of its pages (a `securitypolicyviolation` listener in each document),
 * both in `foreign`. With `login` (a stack from `startStack`, or `{ loginUrl }`), the context is logged in
 * first through the real path: a page visits the login URL, the server's redirect sets the cookie and drops
 * the token from the address. The cookie is per host, not per port, so it also serves a fresh-UI proxy on
 * the same loopback address. */
export async function guardedContext(browser, options = {}, { login = null, hosts = LOCAL_HOSTS } = {}) {
	const context = await browser.newContext(options);
	const foreign = [];
	const violations = [];
	const local = (u) => hosts.includes(new URL(u).hostname);
	await context.route('**/*', (route) => {
		const url = route.request().url();
		if (local(url)) return route.continue();
		foreign.push(new URL(url).href);
		return route.abort();
	});
	context.on('request', (req) => {
		const u = req.url();
		if (/^(https?|wss?):/.test(u) && !local(u)) foreign.push(u);
	});
	await context.exposeBinding('__pifaceCspViolation', (_source, v) => {
		violations.push(v);
		foreign.push(`CSP violation: ${v.directive} blocked ${v.blocked || '(inline)'} in ${v.document}${v.sample ? ` (${v.sample})` : ''}`);
	});
	await context.addInitScript(() => {
		document.addEventListener(
			'securitypolicyviolation',
			(e) => {
				const where = e.target instanceof Element ? e.target.outerHTML.slice(0, 200) : '';
				window.__pifaceCspViolation?.({ directive: e.effectiveDirective, blocked: e.blockedURI, document: e.documentURI, sample: e.sample || where, source: `${e.sourceFile}:${e.lineNumber}` });
			},
			true
		);
	});
	if (login) await logIn(context, login.loginUrl);
	return { context, foreign, violations };
}

/** Logs `context` in by visiting `loginUrl` (`http://host:port/?token=…`), as a user following the link
 * piface printed: checks the redirect took the token out of the address and left the login cookie. */
export async function logIn(context, loginUrl) {
	if (!loginUrl) throw new Error('logIn: this stack printed no login URL (started with --auth none?)');
	const page = await context.newPage();
	try {
		await page.goto(loginUrl, { waitUntil: 'domcontentloaded' });
		const landed = new URL(page.url());
		if (landed.searchParams.has('token')) throw new Error(`the login URL was not redirected: ${page.url()}`);
		if (landed.searchParams.has('login_error')) throw new Error(`the login URL was refused: ${page.url()}`);
		const cookies = await context.cookies(new URL(loginUrl).origin);
		if (!cookies.some((c) => c.name === 'piface_auth')) throw new Error(`no piface_auth cookie after visiting the login URL (cookies: ${cookies.map((c) => c.name).join(', ') || 'none'})`);
	} finally {
		await page.close();
	}
}

/** JSON over HTTP against piface, logged in with the bearer token (`{ auth: false }`: without it). */
export async function http(base, method, path, body, { auth = true, headers = {} } = {}) {
	const res = await fetch(base + path, {
		method,
		headers: { ...(auth ? authHeaders(base) : {}), ...(body === undefined ? {} : { 'content-type': 'application/json' }), ...headers },
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

const MIME = { '.html': 'text/html', '.js': 'text/javascript', '.css': 'text/css', '.svg': 'image/svg+xml', '.json': 'application/json', '.webp': 'image/webp', '.png': 'image/png', '.woff2': 'font/woff2', '.webmanifest': 'application/manifest+json' };

/** The bodies of the inline `<script>` elements of an HTML page (as piface finds them for its policy). */
export function inlineScripts(html) {
	const out = [];
	for (const m of html.matchAll(/<script([^>]*)>([\s\S]*?)<\/script>/g)) if (!/\ssrc=/.test(m[1])) out.push(m[2]);
	return out;
}

/** piface's Content-Security-Policy with `script-src` allowing the inline scripts of `shellHtml` by hash
 * instead of those of the shell the binary embeds. */
export function policyForShell(policy, shellHtml) {
	const hashes = inlineScripts(shellHtml).map((body) => `'sha256-${createHash('sha256').update(body).digest('base64')}'`);
	return policy.replace(/script-src [^;]*/, `script-src 'self'${hashes.map((h) => ' ' + h).join('')}`);
}

/** Serves a UI build (`frontend/build` by default) on a loopback port and forwards `/api/…` and `/ws/…`
 * (WebSocket upgrades included) to piface at `base`. Host and Origin pass through unchanged, so piface's
 * same-origin check sees one origin. This runs the UI e2e against a fresh `npm run build` when the binary
 * still embeds an older one (the binary embeds the UI at compile time). The UI's files go out with piface's
 * own security headers, the policy's script hashes made for this build's shell, so the Content Security
 * Policy is tested here too. Resolves to `{ url, close }`. */
export async function freshUiProxy(base, dir = join(frontendDir, 'build')) {
	const target = new URL(base);
	dir = resolve(dir);
	const shell = join(dir, '200.html');
	if (!existsSync(shell)) throw new Error(`no UI build at ${dir}: run npm run build`);
	const probe = await fetch(`${base}/api/health`);
	const security = {};
	for (const h of ['content-security-policy', 'x-frame-options', 'referrer-policy', 'x-content-type-options']) {
		const v = probe.headers.get(h);
		if (v) security[h] = h === 'content-security-policy' ? policyForShell(v, readFileSync(shell, 'utf8')) : v;
	}
	// The API, and a login link (`?token=`), which piface answers with the cookie and a redirect.
	const isApi = (url) => /^\/(api|ws)\//.test(url) || /[?&]token=/.test(url);
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
				res.writeHead(404, security).end();
				return;
			}
			file = shell;
		}
		res.writeHead(200, { ...security, 'content-type': MIME[extname(file)] ?? 'application/octet-stream', 'cache-control': 'no-cache' });
		res.end(readFileSync(file));
	});
	// Upgraded sockets are not the server's any more: track them so `close` can end them too.
	const tunnels = new Set();
	server.on('upgrade', (req, socket, head) => {
		const headers = [];
		for (let i = 0; i < req.rawHeaders.length; i += 2) headers.push([req.rawHeaders[i], req.rawHeaders[i + 1]]);
		tunnel(req, socket, head, target, headers, tunnels);
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

/** The status piface answers a WebSocket upgrade of `path` with (101 when it accepts), sent from Node with
 * the bearer token unless `{ auth: false }`; the socket is closed right after. */
/** Forwards a WebSocket upgrade to `target` (a URL) with `headers` ([name, value] pairs) and pipes the
 * two sockets together; the tunnel's closer is kept in `tunnels` until either side ends. */
export function tunnel(req, socket, head, target, headers, tunnels) {
	const up = netConnect(Number(target.port), target.hostname, () => {
		const lines = [`${req.method} ${req.url} HTTP/1.1`, ...headers.map(([k, v]) => `${k}: ${v}`)];
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
}

export function upgradeStatus(base, path, { auth = true, headers = {} } = {}) {
	const url = new URL(base);
	return new Promise((resolveStatus, reject) => {
		const req = httpRequest({
			host: url.hostname,
			port: url.port,
			path,
			headers: {
				connection: 'Upgrade',
				upgrade: 'websocket',
				'sec-websocket-version': '13',
				'sec-websocket-key': Buffer.from('piface-e2e-key!!').toString('base64'),
				...(auth ? authHeaders(base) : {}),
				...headers
			}
		});
		req.on('upgrade', (res, socket) => {
			socket.destroy();
			resolveStatus(res.statusCode);
		});
		req.on('response', (res) => {
			res.resume();
			resolveStatus(res.statusCode);
		});
		req.on('error', reject);
		req.end();
	});
}
