// The server's limits as the WebSocket clients meet them: a client message over 1 MiB closes the socket
// with 1009 and a reason, so the UI refuses to send one (and says why), and tells the reader why the server
// closed a socket when it said so. Pure functions; the socket classes and views apply them.

/** The most bytes the server takes in one WebSocket message from a client. */
export const MAX_CLIENT_MESSAGE_BYTES = 1 << 20;

/** Close code of a message over the server's size limit. */
export const MESSAGE_TOO_BIG = 1009;

/** The UTF-8 size of a JSON message. */
export function messageBytes(msg: unknown): number {
	return new TextEncoder().encode(JSON.stringify(msg)).length;
}

/** Why `msg` must not be sent, or null when it fits. */
export function oversizeMessage(msg: unknown, limit = MAX_CLIENT_MESSAGE_BYTES): string | null {
	const n = messageBytes(msg);
	if (n <= limit) return null;
	const mib = (x: number) => (x / (1 << 20)).toFixed(x < 10 << 20 ? 1 : 0);
	return `This message is ${mib(n)} MiB; the server takes at most ${mib(limit)} MiB per message. It was kept: shorten it, or attach the text as a file.`;
}

/** Words for a close the reader should know about: the server said why (a message too large, a limit), or
 * closed for a message too large without saying. Normal closes and network drops (1006) say nothing: the
 * socket reconnects on its own. */
export function closeNotice(code: number, reason: string): string | null {
	const r = reason.trim();
	if (code === MESSAGE_TOO_BIG) return `The server closed the connection: ${r || 'a message was too large'}. Reconnecting…`;
	if (r && code !== 1000 && code !== 1001 && code !== 1006) return `The server closed the connection: ${r}`;
	return null;
}
