// The server's WebSocket limits as the clients meet them: a message over the server's size limit
// (`--max-ws-message-mib`, configurable, so the UI cannot know it) closes the socket with 1009 and a reason,
// and the reader is told why the server closed a socket when it said so. Pure functions; the socket classes
// and views apply them.

/** Close code of a message over the server's size limit. */
export const MESSAGE_TOO_BIG = 1009;

/** Words for a close the reader should know about: the server said why (a message too large, a limit), or
 * closed for a message too large without saying. Normal closes and network drops (1006) say nothing. Either
 * way the socket reconnects on its own. */
export function closeNotice(code: number, reason: string): string | null {
	const r = reason.trim();
	if (code === MESSAGE_TOO_BIG) return `The server closed the connection: ${r || 'a message was too large'}.`;
	if (r && code !== 1000 && code !== 1001 && code !== 1006) return `The server closed the connection: ${r}`;
	return null;
}
