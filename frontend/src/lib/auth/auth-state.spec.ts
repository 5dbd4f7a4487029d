// @vitest-environment jsdom
// The login gate's transitions against a scripted `fetch`: what the first status opens, how a 401 and a failed
// socket close the gate, and the login and logout requests.

import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';

const replaceState = vi.fn();
vi.mock('$app/navigation', () => ({ replaceState: (...a: unknown[]) => replaceState(...a) }));

const { AuthState } = await import('./auth-state.svelte');
const { reportSocketFailure, reportUnauthorized } = await import('./signals');

type Reply = { status: number; body?: unknown; headers?: Record<string, string> };
let replies: Record<string, Reply[]>;
let calls: { url: string; init?: RequestInit }[];

function reply(url: string, ...r: Reply[]) {
	(replies[url] ??= []).push(...r);
}

beforeEach(() => {
	replies = {};
	calls = [];
	replaceState.mockClear();
	vi.stubGlobal('fetch', async (url: string, init?: RequestInit) => {
		calls.push({ url, init });
		const r = replies[url]?.shift();
		if (!r) throw new TypeError('Failed to fetch');
		return new Response(r.body === undefined ? null : JSON.stringify(r.body), { status: r.status, headers: r.headers });
	});
	history.replaceState(null, '', '/');
});

afterEach(() => {
	vi.unstubAllGlobals();
});

const LOGGED_OUT = { status: 200, body: { authenticated: false, mode: 'token', user: null } };
const LOGGED_IN = { status: 200, body: { authenticated: true, mode: 'token', user: null } };
const settle = () => new Promise((r) => setTimeout(r, 0));

describe('AuthState', () => {
	it('retries an unreachable server on its own and opens once it answers', async () => {
		vi.useFakeTimers();
		try {
			const a = new AuthState();
			await a.check();
			expect(a.gate).toBe('error');
			expect(a.errorStatus).toBe(0);
			reply('/api/auth/status', { status: 502, body: { detail: 'Bad Gateway' } });
			await vi.advanceTimersByTimeAsync(2000);
			expect(a.errorStatus).toBe(502);
			reply('/api/auth/status', LOGGED_IN);
			await vi.advanceTimersByTimeAsync(4000);
			expect(a.gate).toBe('open');
		} finally {
			vi.useRealTimers();
		}
	});

	it('opens when logged in, shows the login page when not', async () => {
		const a = new AuthState();
		reply('/api/auth/status', LOGGED_IN);
		await a.check();
		expect(a.gate).toBe('open');
		const b = new AuthState();
		reply('/api/auth/status', LOGGED_OUT);
		await b.check();
		expect(b.gate).toBe('login');
		expect(b.status?.mode).toBe('token');
	});

	it('treats a server without the auth endpoints as open', async () => {
		const a = new AuthState();
		reply('/api/auth/status', { status: 404, body: { detail: 'Not Found' } });
		await a.check();
		expect(a.gate).toBe('open');
		expect(a.status?.mode).toBe('none');
	});

	it('shows a refused host with the server detail', async () => {
		const a = new AuthState();
		reply('/api/auth/status', { status: 403, body: { detail: 'Host not allowed: use --allowed-host box' } });
		await a.check();
		expect(a.gate).toBe('error');
		expect(a.errorStatus).toBe(403);
		expect(a.error).toBe('The server refused this page: Host not allowed: use --allowed-host box');
	});

	it('says so when the server cannot be reached', async () => {
		const a = new AuthState();
		await a.check();
		expect(a.gate).toBe('error');
		expect(a.error).toMatch(/^Could not reach piface/);
	});

	it('logs in: the token is posted, then the status opens the gate', async () => {
		const a = new AuthState();
		reply('/api/auth/status', LOGGED_OUT, LOGGED_IN);
		await a.check();
		reply('/api/auth/login', { status: 204 });
		expect(await a.login('t0k3n')).toBeNull();
		expect(a.gate).toBe('open');
		const post = calls.find((c) => c.url === '/api/auth/login')!;
		expect(post.init?.method).toBe('POST');
		expect(JSON.parse(String(post.init?.body))).toEqual({ token: 't0k3n' });
	});

	it('reports a wrong token and a rate limit without opening', async () => {
		const a = new AuthState();
		reply('/api/auth/status', LOGGED_OUT);
		await a.check();
		reply('/api/auth/login', { status: 401, body: { detail: 'Invalid token' } });
		expect(await a.login('nope')).toMatch(/^That token is not valid/);
		reply('/api/auth/login', { status: 429, body: { detail: 'Too many failed logins from this address; try again in 30 s' }, headers: { 'retry-after': '30' } });
		expect(await a.login('nope')).toBe('Too many failed logins from this address; try again in 30 s');
		expect(a.gate).toBe('login');
	});

	it('closes the gate on a 401 from the API, with a notice', async () => {
		const a = new AuthState();
		reply('/api/auth/status', LOGGED_IN);
		a.start();
		await settle();
		expect(a.gate).toBe('open');
		reportUnauthorized();
		expect(a.gate).toBe('login');
		expect(a.notice).toMatch(/^Your login has ended/);
		expect(a.noticeIsError).toBe(true);
	});

	it('asks the status when a socket fails, once however many fail together', async () => {
		const a = new AuthState();
		reply('/api/auth/status', LOGGED_IN);
		a.start();
		await settle();
		reply('/api/auth/status', LOGGED_IN);
		reportSocketFailure();
		reportSocketFailure();
		reportSocketFailure();
		await settle();
		expect(calls.filter((c) => c.url === '/api/auth/status')).toHaveLength(2);
		expect(a.gate).toBe('open');
		reply('/api/auth/status', LOGGED_OUT);
		reportSocketFailure();
		await settle();
		await settle();
		expect(a.gate).toBe('login');
		expect(a.notice).toMatch(/^Your login has ended/);
	});

	it('reads login_error from the address, says it and takes it out', async () => {
		history.replaceState(null, '', '/session/abc?tab=files&login_error=invalid');
		const a = new AuthState();
		reply('/api/auth/status', LOGGED_OUT);
		a.start();
		await settle();
		await settle();
		expect(a.gate).toBe('login');
		expect(a.notice).toMatch(/^The token in that login link is not valid/);
		expect(replaceState).toHaveBeenCalledWith('/session/abc?tab=files', {});
	});

	it('logs in with a token that reached the page, and takes it out of the address', async () => {
		history.replaceState(null, '', '/?token=abc');
		const a = new AuthState();
		reply('/api/auth/login', { status: 204 });
		reply('/api/auth/status', LOGGED_IN);
		a.start();
		await settle();
		await settle();
		await settle();
		expect(a.gate).toBe('open');
		expect(replaceState).toHaveBeenCalledWith('/', {});
	});

	it('logs out: the server is told, and the login page says so', async () => {
		const a = new AuthState();
		reply('/api/auth/status', LOGGED_IN);
		await a.check();
		reply('/api/auth/logout', { status: 204 });
		reply('/api/auth/status', LOGGED_OUT);
		await a.logout();
		expect(a.gate).toBe('login');
		expect(a.notice).toBe('You are logged out.');
		expect(a.noticeIsError).toBe(false);
	});
});
