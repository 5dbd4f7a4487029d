// Where the rest of the UI tells the login gate that credentials may be missing: an API answer of 401
// (`reportUnauthorized`, called by the API client, the upload request and nothing else) and a WebSocket that
// closed without being asked to (`reportSocketFailure`, called by connection/reconnecting-socket.ts, the base
// of all three sockets). A browser never sees why an upgrade failed, so the gate then asks `/api/auth/status`.
// Plain functions with one listener each, set by `auth-state.svelte.ts`, so the API client and the sockets stay
// free of Svelte state and testable.

type Listener = () => void;

let unauthorized: Listener | null = null;
let socketFailure: Listener | null = null;

/** Installs the gate's listeners (one of each; a second call replaces them). */
export function setAuthListeners(l: { unauthorized: Listener; socketFailure: Listener }): void {
	unauthorized = l.unauthorized;
	socketFailure = l.socketFailure;
}

/** An API request was answered 401: the login is gone (expired, logged out elsewhere, token rotated). */
export function reportUnauthorized(): void {
	unauthorized?.();
}

/** A WebSocket closed unexpectedly: perhaps its upgrade was refused for want of credentials. */
export function reportSocketFailure(): void {
	socketFailure?.();
}
