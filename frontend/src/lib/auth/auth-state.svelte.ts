// The login gate's state, one per page: whether the app may show itself (`gate`), the server's auth status,
// and the requests of logging in and out. The root layout renders the app only while `gate` is `open`, the
// login page while it is `login`: the address stays where the user was, so logging in again carries on there
// (the page is mounted afresh and its sockets reconnect). Listens to `signals.ts`: a 401 from any API call
// closes the gate at once; a socket that failed makes it ask `/api/auth/status` (at most one question at a
// time), since a browser cannot see that an upgrade was answered 401.
//
// Not here: the words (auth.ts) and the markup (LoginPage.svelte).

import { replaceState } from '$app/navigation';
import { backoffDelay } from '../connection/reconnect';
import { isUnreachable, OPEN_SERVER, loginFailureMessage, parseAuthStatus, refusalMessage, takeLoginParams, type AuthStatus } from './auth';
import { setAuthListeners } from './signals';

export type Gate = 'checking' | 'open' | 'login' | 'error';

/** What a JSON answer said: status, `detail`, `Retry-After`. */
async function answer(res: Response): Promise<{ status: number; body: unknown; detail: string | null; retryAfter: string | null }> {
	const text = await res.text().catch(() => '');
	let body: unknown = null;
	try {
		body = text ? JSON.parse(text) : null;
	} catch {
		body = null;
	}
	const d = body && typeof body === 'object' && 'detail' in body ? (body as { detail: unknown }).detail : null;
	return { status: res.status, body, detail: typeof d === 'string' ? d : null, retryAfter: res.headers.get('retry-after') };
}

const JSON_POST = { method: 'POST', headers: { 'content-type': 'application/json' } } as const;

export class AuthState {
	gate = $state<Gate>('checking');
	/** The server's last answer to `/api/auth/status`. */
	status = $state<AuthStatus | null>(null);
	/** Why the app cannot be shown (gate `error`): a refused host, an unreachable server. */
	error = $state<string | null>(null);
	/** The HTTP status behind `error` (403: a refused host or origin), 0 when the server did not answer. */
	errorStatus = $state(0);
	/** A message for the login page: a refused login link, a login that ended, a logout. */
	notice = $state<string | null>(null);
	/** Whether `notice` reports a problem (red) rather than news (a logout). */
	noticeIsError = $state(false);

	#checking: Promise<void> | null = null;
	#started = false;
	/** Retries of an unreachable server so far; the next one waits `backoffDelay` (2 s … 15 s). */
	#attempt = 0;
	#retry: ReturnType<typeof setTimeout> | null = null;

	/** Reads the login parameters of the address, installs the listeners and asks the server. Idempotent. */
	start(): void {
		if (this.#started) return;
		this.#started = true;
		setAuthListeners({ unauthorized: () => this.#loggedOut(), socketFailure: () => void this.#recheck() });
		const params = takeLoginParams(location.search);
		if (params.message || params.token) {
			// Take the token and the error out of the address bar (and so out of history and bookmarks). The
			// router is not ready while the first page mounts: right after, as SessionView does for its tab.
			const clean = `${location.pathname}${params.search}${location.hash}`;
			setTimeout(() => replaceState(clean, {}));
		}
		if (params.message) this.#say(params.message, true);
		if (params.token) void this.#loginFromLink(params.token);
		else void this.check();
	}

	/** Asks `/api/auth/status` and opens or closes the gate accordingly. */
	check(): Promise<void> {
		this.#checking ??= this.#ask().finally(() => (this.#checking = null));
		return this.#checking;
	}

	async #ask(): Promise<void> {
		let res: Response;
		try {
			res = await fetch('/api/auth/status', { cache: 'no-store' });
		} catch (err) {
			// Offline or the server is down: keep the app if it was shown (its sockets retry on their own).
			if (this.gate !== 'open') this.#fail(0, `Could not reach piface: ${err instanceof Error ? err.message : String(err)}`);
			return;
		}
		const a = await answer(res);
		if (a.status === 404) return this.#apply(OPEN_SERVER);
		if (isUnreachable(a.status) && this.gate !== 'open') return this.#fail(a.status, `piface answered ${a.status}: ${a.detail ?? 'it is not reachable behind the proxy'}`);
		if (a.status !== 200) return this.#fail(a.status, refusalMessage(a.status, a.detail));
		const s = parseAuthStatus(a.body);
		if (!s) return this.#fail(a.status, 'The server sent an unexpected login status.');
		this.#apply(s);
	}

	#apply(s: AuthStatus): void {
		this.status = s;
		this.error = null;
		this.#attempt = 0;
		if (s.authenticated) {
			this.gate = 'open';
			this.notice = null;
		} else {
			this.gate = 'login';
		}
	}

	#fail(status: number, message: string): void {
		this.error = message;
		this.errorStatus = status;
		this.gate = 'error';
		// The coordinator is down or restarting: show "reconnecting" and ask again, sooner when the browser
		// says it is back online.
		if (isUnreachable(status) && !this.#retry) {
			this.#attempt += 1;
			this.#retry = setTimeout(() => {
				this.#retry = null;
				void this.check();
			}, backoffDelay(this.#attempt));
			globalThis.addEventListener?.('online', this.#online, { once: true });
		}
	}

	#online = () => {
		if (this.#retry) clearTimeout(this.#retry);
		this.#retry = null;
		void this.check();
	};

	#say(message: string | null, isError: boolean): void {
		this.notice = message;
		this.noticeIsError = isError;
	}

	/** A 401 from the API: show the login page now. */
	#loggedOut(): void {
		if (this.gate !== 'open') return;
		this.#say('Your login has ended (the token may have been rotated). Log in again to carry on.', true);
		if (this.status) this.status = { ...this.status, authenticated: false };
		this.gate = 'login';
	}

	/** A socket failed: ask the server whether we are still logged in (one question at a time). */
	async #recheck(): Promise<void> {
		if (this.gate !== 'open' || this.#checking) return;
		await this.check();
		if ((this.gate as Gate) === 'login') this.#say('Your login has ended (the token may have been rotated). Log in again to carry on.', true);
	}

	async #loginFromLink(token: string): Promise<void> {
		const failure = await this.login(token);
		if (failure) {
			await this.check();
			this.#say(failure, true);
		}
	}

	/** Exchanges `token` for the login cookie; resolves to null on success, else to the words for the failure. */
	async login(token: string): Promise<string | null> {
		let res: Response;
		try {
			res = await fetch('/api/auth/login', { ...JSON_POST, body: JSON.stringify({ token }) });
		} catch (err) {
			return loginFailureMessage(0, err instanceof Error ? err.message : String(err));
		}
		if (!res.ok) {
			const a = await answer(res);
			return loginFailureMessage(a.status, a.detail, a.retryAfter);
		}
		await this.check();
		if (this.gate === 'open') return null;
		return this.gate === 'error' ? this.error : 'The server accepted the token but does not see the login cookie. Is a proxy dropping cookies?';
	}

	/** Ends the login (the server clears the cookie) and shows the login page. */
	async logout(): Promise<void> {
		try {
			const res = await fetch('/api/auth/logout', JSON_POST);
			if (!res.ok && res.status !== 401) {
				const a = await answer(res);
				this.#say(`Could not log out: ${refusalMessage(a.status, a.detail)}`, true);
				return;
			}
		} catch (err) {
			this.#say(`Could not log out: ${err instanceof Error ? err.message : String(err)}`, true);
			return;
		}
		await this.check();
		if (this.gate === 'login') this.#say('You are logged out.', false);
	}
}

export const auth = new AuthState();
