import { describe, expect, it } from 'vitest';
import {
	OPEN_SERVER,
	canLogOut,
	loginErrorMessage,
	loginFailureMessage,
	looksLikeToken,
	parseAuthStatus,
	refusalMessage,
	retryAfterSeconds,
	takeLoginParams,
	tokenFromInput,
	userLabel
} from './auth';

const TOKEN = 'ab'.repeat(32);

describe('parseAuthStatus', () => {
	it('reads the three modes', () => {
		expect(parseAuthStatus({ authenticated: false, mode: 'token', user: null })).toEqual({ authenticated: false, mode: 'token', user: null });
		expect(parseAuthStatus({ authenticated: true, mode: 'tailscale', user: 'alice@example.com' })).toEqual({
			authenticated: true,
			mode: 'tailscale',
			user: 'alice@example.com'
		});
		expect(parseAuthStatus({ authenticated: true, mode: 'none', user: null })?.mode).toBe('none');
	});

	it('is lenient with extras and strict with what matters', () => {
		expect(parseAuthStatus({ authenticated: true, mode: 'future', user: '' })).toEqual({ authenticated: true, mode: 'token', user: null });
		expect(parseAuthStatus({ mode: 'token' })).toBeNull();
		expect(parseAuthStatus({ authenticated: 'yes', mode: 'token' })).toBeNull();
		expect(parseAuthStatus(null)).toBeNull();
		expect(parseAuthStatus('<html>')).toBeNull();
	});
});

describe('tokenFromInput', () => {
	it('takes a bare token, trimmed', () => {
		expect(tokenFromInput(`  ${TOKEN}\n`)).toBe(TOKEN);
	});

	it('takes the token out of the login line, the login URL or token=…', () => {
		expect(tokenFromInput(`http://127.0.0.1:7832/?token=${TOKEN}`)).toBe(TOKEN);
		expect(tokenFromInput(`https://box.tail1234.ts.net/session/x?tab=files&token=${TOKEN}#top`)).toBe(TOKEN);
		expect(tokenFromInput(`token=${TOKEN}`)).toBe(TOKEN);
		expect(tokenFromInput(`"${TOKEN}"`)).toBe(TOKEN);
		expect(tokenFromInput(`<http://127.0.0.1:7832/?token=${TOKEN}>`)).toBe(TOKEN);
	});

	it('leaves anything else for the server to judge', () => {
		expect(tokenFromInput('not a token')).toBe('not a token');
		expect(tokenFromInput('   ')).toBe('');
	});
});

describe('looksLikeToken', () => {
	it('is 64 lowercase hex characters', () => {
		expect(looksLikeToken(TOKEN)).toBe(true);
		expect(looksLikeToken(TOKEN.toUpperCase())).toBe(false);
		expect(looksLikeToken(TOKEN.slice(1))).toBe(false);
	});
});

describe('login failure messages', () => {
	it('says a wrong token is wrong and where to find the right one', () => {
		expect(loginFailureMessage(401, 'Invalid token')).toMatch(/^That token is not valid\..*piface auth token/);
	});

	it('passes on the rate limit detail, or builds one from Retry-After', () => {
		const detail = 'Too many failed logins from this address; try again in 42 s';
		expect(loginFailureMessage(429, detail, '42')).toBe(detail);
		expect(loginFailureMessage(429, null, '41.2')).toBe('Too many failed logins from this address; try again in 42 s.');
		expect(loginFailureMessage(429, null, null)).toBe('Too many failed logins from this address; try again later.');
		expect(retryAfterSeconds('soon')).toBeNull();
	});

	it('shows the server detail of a refused host or origin, which names the flag', () => {
		const detail = 'Host "box.tail1234.ts.net" is not allowed: start piface with --allowed-host box.tail1234.ts.net';
		expect(loginFailureMessage(403, detail)).toBe(`The server refused this page: ${detail}`);
		expect(refusalMessage(403, null)).toBe('The server refused this page (403).');
		expect(refusalMessage(500, 'boom')).toBe('boom (500)');
		expect(refusalMessage(502, '')).toBe('The server answered 502.');
	});

	it('says when the server did not answer', () => {
		expect(loginFailureMessage(0, 'Failed to fetch')).toBe('Could not reach piface: Failed to fetch');
	});
});

describe('takeLoginParams', () => {
	it('reads login_error and strips it, keeping the other parameters', () => {
		expect(takeLoginParams('?login_error=invalid')).toEqual({ message: loginErrorMessage('invalid'), token: null, search: '' });
		const r = takeLoginParams('?tab=files&login_error=rate_limited');
		expect(r.message).toMatch(/^Too many failed logins/);
		expect(r.search).toBe('?tab=files');
		expect(takeLoginParams('?login_error=weird').message).toBe('The login link was not accepted (weird).');
	});

	it('takes a token that reached the page and strips it', () => {
		expect(takeLoginParams(`?token=${TOKEN}&tab=diff`)).toEqual({ message: null, token: TOKEN, search: '?tab=diff' });
		expect(takeLoginParams('?token=').token).toBeNull();
	});

	it('leaves a query without either alone', () => {
		expect(takeLoginParams('?tab=files')).toEqual({ message: null, token: null, search: '?tab=files' });
		expect(takeLoginParams('')).toEqual({ message: null, token: null, search: '' });
	});
});

describe('the header', () => {
	it('offers Log out with a token login only', () => {
		expect(canLogOut({ authenticated: true, mode: 'token', user: null })).toBe(true);
		expect(canLogOut({ authenticated: true, mode: 'none', user: null })).toBe(false);
		expect(canLogOut(OPEN_SERVER)).toBe(false);
		expect(canLogOut({ authenticated: false, mode: 'token', user: null })).toBe(false);
		expect(canLogOut(null)).toBe(false);
		// The proxy vouches for a Tailscale user: logging out would log straight back in.
		expect(canLogOut({ authenticated: true, mode: 'tailscale', user: 'alice@example.com' })).toBe(false);
		expect(canLogOut({ authenticated: true, mode: 'tailscale', user: null })).toBe(true);
	});

	it('names the Tailscale user', () => {
		expect(userLabel({ authenticated: true, mode: 'tailscale', user: 'alice@example.com' })).toBe('alice@example.com');
		expect(userLabel({ authenticated: true, mode: 'token', user: null })).toBeNull();
		expect(userLabel({ authenticated: false, mode: 'tailscale', user: 'x' })).toBeNull();
	});
});

describe('isUnreachable', () => {
	it('takes no answer and a proxy’s 502/503/504 for a coordinator that is away, not for a refusal', async () => {
		const { isUnreachable, RECONNECTING } = await import('./auth');
		expect([0, 502, 503, 504].every(isUnreachable)).toBe(true);
		expect([200, 401, 403, 404, 500].some(isUnreachable)).toBe(false);
		expect(RECONNECTING).toMatch(/^Reconnecting/);
	});
});
