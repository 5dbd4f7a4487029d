// The chat WebSocket of one session, in compact mode (see `socketUrl`): exposes its status as `$state` and
// sends typed messages over a `ReconnectingSocket` (reconnecting-socket.ts: backoff, lifecycle reconnects,
// cleanup). Every open says whether the page is visible (`piface_visibility`, again whenever that changes: the
// coordinator pushes nothing about a session one of whose pages is visible) and asks for the history
// (`piface_get_history`) and for pi's state, so a reconnect resumes from a full replay; the reducer decides what
// the feed shows. A close with 4004 (session gone) is final.
//
// Not here: what frames mean (chat/reducer.ts) and what the page does with them.

import type { BrowserFrame, ClientMessage, ServerFrame } from '../api/protocol';
import { ReconnectingSocket } from './reconnecting-socket';
import { socketUrl } from './reconnect';

export type SocketStatus = 'idle' | 'connecting' | 'open' | 'closed';

export interface SocketHandlers {
	/** A frame arrived (already parsed). */
	frame(frame: ServerFrame): void;
	/** The socket opened (before the first frame of this connection). */
	open?(): void;
	/** The server closed with 4004: the session is not live any more. */
	gone?(): void;
	/** Any other close the socket did not ask for (it reconnects by itself): the code and the server's reason. */
	closed?(code: number, reason: string): void;
}

/** Close code of the server for an unknown or closed session. */
const SESSION_GONE = 4004;

export class SessionSocket {
	/** Connection status, for the UI. */
	status = $state<SocketStatus>('idle');
	/** Retry number of the pending reconnect (0 when none). */
	attempt = $state(0);

	readonly #socket: ReconnectingSocket;

	constructor(
		readonly sessionId: string,
		private readonly handlers: SocketHandlers
	) {
		this.#socket = new ReconnectingSocket(
			{
				url: () => socketUrl(location, this.sessionId),
				open: (send) => {
					this.handlers.open?.();
					send(JSON.stringify(visibilityFrame()));
					send(JSON.stringify({ type: 'piface_get_history' }));
					send(JSON.stringify({ type: 'get_state' }));
				},
				message: (data) => {
					const frame = parseFrame(data);
					if (frame) this.handlers.frame(frame);
				},
				isFinal: (code) => code === SESSION_GONE,
				change: (s, close) => {
					this.status = s === 'idle' || s === 'connecting' || s === 'open' ? s : 'closed';
					this.attempt = this.#socket.attempt;
					if (s === 'ended') this.handlers.gone?.();
					else if (s === 'reconnecting' && close) this.handlers.closed?.(close.code, close.reason);
				}
			}
		);
	}

	/** Whether the session is live; a closed session is never (re)connected. */
	set live(v: boolean) {
		this.#socket.live = v;
	}

	get live(): boolean {
		return this.#socket.live;
	}

	get connected(): boolean {
		return this.status === 'open';
	}

	/** Opens the socket and starts listening to page lifecycle events. */
	start(): void {
		if (!this.#listening) {
			document.addEventListener('visibilitychange', this.#visibility);
			this.#listening = true;
		}
		this.#socket.start();
	}

	/** Closes the socket for good (leaving the page). */
	stop(): void {
		document.removeEventListener('visibilitychange', this.#visibility);
		this.#listening = false;
		this.#socket.stop();
	}

	#listening = false;
	readonly #visibility = () => {
		this.#socket.send(JSON.stringify(visibilityFrame()));
	};

	/** Reconnects now if the session is live and no socket is open (e.g. after a resume). Unlike the terminal's,
	 * this does not undo a 4004: the page sets `live` from the session's record first. */
	reconnectNow(): void {
		if (!this.#socket.live) return;
		this.#socket.reconnectNow();
	}

	/** Sends a message; false when the socket is not open (nothing is queued). */
	send(msg: ClientMessage): boolean {
		return this.#socket.send(JSON.stringify(msg));
	}
}

/** Whether the page is visible now, as the coordinator reads it. */
export function visibilityFrame(): BrowserFrame {
	return { type: 'piface_visibility', visible: document.visibilityState === 'visible' };
}

/** A text frame with a string `type`; anything else is skipped. */
function parseFrame(data: unknown): ServerFrame | null {
	if (typeof data !== 'string') return null;
	let frame: ServerFrame;
	try {
		frame = JSON.parse(data) as ServerFrame;
	} catch {
		return null;
	}
	return frame && typeof frame === 'object' && typeof frame.type === 'string' ? frame : null;
}
