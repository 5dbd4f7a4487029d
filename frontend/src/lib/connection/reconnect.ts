// The reconnect policy of every socket (contract: websocket.md, "Client reconnect behaviour"): the backoff
// after an unexpected close and the throttle of lifecycle-triggered reconnects (visibilitychange, pageshow,
// online). Pure functions; reconnecting-socket.ts applies them for every socket.

/** Longest wait between two attempts. */
export const MAX_BACKOFF_MS = 15_000;
/** Minimum time between two reconnects triggered by page lifecycle events. */
export const LIFECYCLE_COOLDOWN_MS = 1_200;

/** Delay before retry number `attempt` (1 for the first retry): 2 s, 4 s, 8 s, then 15 s. */
export function backoffDelay(attempt: number): number {
	const n = Math.max(0, Math.floor(attempt));
	return Math.min(MAX_BACKOFF_MS, 1000 * 2 ** Math.min(n, 20));
}

/** What a lifecycle event needs to know to decide whether to reconnect now. */
export interface LifecycleInput {
	live: boolean;
	connected: boolean;
	hasSocket: boolean;
	visible: boolean;
	online: boolean;
	now: number;
	/** When the previous lifecycle-triggered attempt was made (ms), or null. */
	lastAttempt: number | null;
}

/** Whether a `visibilitychange`/`pageshow`/`online` event should schedule a reconnect. */
export function shouldLifecycleReconnect(i: LifecycleInput): boolean {
	if (!i.live || i.connected || i.hasSocket || !i.visible || !i.online) return false;
	return i.lastAttempt === null || i.now - i.lastAttempt >= LIFECYCLE_COOLDOWN_MS;
}

/** Whether an unexpected close should schedule a backoff retry. */
export function shouldRetryAfterClose(i: { live: boolean; visible: boolean; closedByUs: boolean }): boolean {
	return i.live && i.visible && !i.closedByUs;
}

/** The chat socket's URL for a page served from `loc` (`wss:` under `https:`). The UI asks for compact mode:
 * streaming updates then carry a patch against the previous partial message instead of the whole partial
 * twice (chat/patch.ts), which keeps a long answer's traffic linear in its length. */
export function socketUrl(loc: { protocol: string; host: string }, sessionId: string): string {
	const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
	return `${scheme}//${loc.host}/ws/sessions/${encodeURIComponent(sessionId)}?mode=compact`;
}
