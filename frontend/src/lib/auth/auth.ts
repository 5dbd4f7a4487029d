// The login rules that need no browser: reading `GET /api/auth/status`, what a pasted token means, the words
// for each way a login can fail (a wrong token, too many tries, a refused host or origin), the `login_error`
// the server's `/?token=…` redirect leaves in the URL, and what the header shows (user, Log out).
//
// Not here: requests and state (auth-state.svelte.ts), markup (LoginPage.svelte, AccountControl.svelte).

/** `--auth token|tailscale|none` of the server. */
export type AuthMode = 'token' | 'tailscale' | 'none';

/** `GET /api/auth/status`. */
export interface AuthStatus {
	authenticated: boolean;
	mode: AuthMode;
	/** Who is logged in, when the server knows (the Tailscale login). */
	user: string | null;
}

/** A server without the auth endpoints (older than login support) is open: nothing to log in to. */
export const OPEN_SERVER: AuthStatus = Object.freeze({ authenticated: true, mode: 'none', user: null });

/** Reads a status body leniently; null when it is not one (an unknown mode counts as `token`). */
export function parseAuthStatus(body: unknown): AuthStatus | null {
	if (!body || typeof body !== 'object') return null;
	const b = body as Record<string, unknown>;
	if (typeof b.authenticated !== 'boolean') return null;
	const mode: AuthMode = b.mode === 'none' || b.mode === 'tailscale' ? b.mode : 'token';
	const user = typeof b.user === 'string' && b.user !== '' ? b.user : null;
	return { authenticated: b.authenticated, mode, user };
}

/** The token in what the user pasted: the token itself, or the whole login URL (`…/?token=…`) that piface
 * prints at start, or `token=…`. Surrounding blanks and quotes are dropped. */
export function tokenFromInput(input: string): string {
	const s = input.trim().replace(/^['"<]+|['">]+$/g, '').trim();
	const m = /[?&#]token=([^&#\s]*)/.exec(s) ?? /^token=([^&#\s]*)$/.exec(s);
	const raw = m?.[1];
	if (raw !== undefined) {
		try {
			return decodeURIComponent(raw).trim();
		} catch {
			return raw.trim();
		}
	}
	return s;
}

/** A token as piface makes them: 64 lowercase hex characters. Only a hint: the server decides. */
export function looksLikeToken(token: string): boolean {
	return /^[0-9a-f]{64}$/.test(token);
}

/** A `Retry-After` header as a number of seconds, or null. */
export function retryAfterSeconds(header: string | null): number | null {
	if (!header) return null;
	const n = Number(header.trim());
	return Number.isFinite(n) && n >= 0 ? Math.ceil(n) : null;
}

/** What the login page says when `POST /api/auth/login` was not accepted. */
export function loginFailureMessage(status: number, detail: string | null, retryAfter: string | null = null): string {
	if (status === 401) return 'That token is not valid. Copy it again from the login line piface printed at start, or run `piface auth token` on the server.';
	if (status === 429) {
		if (detail) return detail;
		const s = retryAfterSeconds(retryAfter);
		return `Too many failed logins from this address; try again${s !== null ? ` in ${s} s` : ' later'}.`;
	}
	if (status === 0) return `Could not reach piface${detail ? `: ${detail}` : '.'}`;
	return refusalMessage(status, detail);
}

/** Words for a refusal that no login fixes (a host or origin the server does not accept, a server error):
 * the server's own detail first, since it names the flag to set. */
export function refusalMessage(status: number, detail: string | null): string {
	const d = detail?.trim();
	if (status === 403) return d ? `The server refused this page: ${d}` : 'The server refused this page (403).';
	return d ? `${d} (${status})` : `The server answered ${status}.`;
}

/** The `login_error` the server's `/?token=…` redirect adds when the token in the link was not accepted. */
export function loginErrorMessage(code: string): string {
	if (code === 'invalid') return 'The token in that login link is not valid (it may have been rotated). Paste the current one below.';
	if (code === 'rate_limited') return 'Too many failed logins from this address; wait a minute, then try again.';
	return `The login link was not accepted (${code}).`;
}

/** Reads `login_error` and `token` out of a page's query string: the message to show, the token to log in with
 * (a link that reached the UI without the server's redirect, e.g. through a static proxy), and the query string
 * without either, to put back in the address bar. */
export function takeLoginParams(search: string): { message: string | null; token: string | null; search: string } {
	const q = new URLSearchParams(search);
	const code = q.get('login_error');
	const token = q.get('token');
	q.delete('login_error');
	q.delete('token');
	const rest = q.toString();
	return { message: code !== null ? loginErrorMessage(code) : null, token: token || null, search: rest ? `?${rest}` : '' };
}

/** Whether the header offers Log out: not without login (`none`), and not when the identity comes from the
 * proxy (a Tailscale user would be logged straight back in). */
export function canLogOut(s: AuthStatus | null): boolean {
	if (!s || !s.authenticated || s.mode === 'none') return false;
	return !(s.mode === 'tailscale' && s.user);
}

/** The user the header names, when the server said who it is. */
export function userLabel(s: AuthStatus | null): string | null {
	return s?.authenticated && s.user ? s.user : null;
}

/** Whether a failed `/api/auth/status` means "the coordinator is not there right now" (no answer, or a proxy in
 * front of it answering 502/503/504), which the app shows as "reconnecting" and retries on its own, rather than
 * a refusal to show. */
export function isUnreachable(status: number): boolean {
	return status === 0 || status === 502 || status === 503 || status === 504;
}

/** What the shell says while the coordinator is unreachable (the service worker's cached shell shows it too). */
export const RECONNECTING = 'Reconnecting to piface…';
