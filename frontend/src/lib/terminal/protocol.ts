// The terminal WebSocket's wire format (websocket.md §2) and the bits of terminal behaviour that need no
// browser: the URL, the resize message (clamped as the server clamps it), what a close code means, the
// byte sequences of the phone key bar, and the xterm.js colours taken from the skin's tokens.

/** `ws(s)://host/ws/sessions/<id>/terminal` for a page served from `loc`. */
export function terminalUrl(loc: { protocol: string; host: string }, sessionId: string): string {
	const scheme = loc.protocol === 'https:' ? 'wss:' : 'ws:';
	return `${scheme}//${loc.host}/ws/sessions/${encodeURIComponent(sessionId)}/terminal`;
}

const clamp = (v: number, lo: number, hi: number) => Math.min(hi, Math.max(lo, Math.round(v)));

/** The text frame that resizes the PTY; null for a size xterm reports before layout (0 or NaN). */
export function resizeMessage(cols: number, rows: number): string | null {
	if (!Number.isFinite(cols) || !Number.isFinite(rows) || cols < 1 || rows < 1) return null;
	return JSON.stringify({ type: 'resize', cols: clamp(cols, 1, 500), rows: clamp(rows, 1, 200) });
}

/** Close code of the server for a session that is not live. */
export const SESSION_GONE = 4004;
/** Close code of the server when the PTY could not be started. */
export const PTY_FAILED = 1011;
/** Close code of the server when the project's workspace file has a `[launch]` for the terminal whose content
 * is not trusted yet (the REST API's 409). */
export const WORKSPACE_UNTRUSTED = 4409;

export type CloseMeaning = 'gone' | 'failed' | 'untrusted' | 'retry';

/** What a close means: the session is not live (stop), the PTY failed (stop, say so), the workspace commands
 * wait for the user's trust (stop, ask), or retry with backoff. */
export function closeMeaning(code: number): CloseMeaning {
	if (code === SESSION_GONE) return 'gone';
	if (code === PTY_FAILED) return 'failed';
	if (code === WORKSPACE_UNTRUSTED) return 'untrusted';
	return 'retry';
}

/** A key of the phone key bar: bytes to send, or the sticky Ctrl (`ctrl: true`, no bytes of its own). */
export interface BarKey {
	label: string;
	title: string;
	data: string;
	ctrl?: boolean;
}

/** Keys a phone keyboard lacks or hides, as the bytes a terminal sends for them, in the original's order (Esc,
 * Tab, Ctrl, arrows, `|`, `~`, `-`, `/`) plus our one-tap ^C and ^D after Ctrl. */
export const EXTRA_KEYS: readonly BarKey[] = [
	{ label: 'Esc', title: 'Escape', data: '\x1b' },
	{ label: 'Tab', title: 'Tab', data: '\t' },
	{ label: 'Ctrl', title: 'Control: the next key is sent with Ctrl (e.g. Ctrl, then R)', data: '', ctrl: true },
	{ label: '^C', title: 'Control-C (interrupt)', data: '\x03' },
	{ label: '^D', title: 'Control-D (end of input)', data: '\x04' },
	{ label: '↑', title: 'Arrow up', data: '\x1b[A' },
	{ label: '↓', title: 'Arrow down', data: '\x1b[B' },
	{ label: '←', title: 'Arrow left', data: '\x1b[D' },
	{ label: '→', title: 'Arrow right', data: '\x1b[C' },
	{ label: '|', title: 'Pipe', data: '|' },
	{ label: '~', title: 'Tilde', data: '~' },
	{ label: '-', title: 'Dash', data: '-' },
	{ label: '/', title: 'Slash', data: '/' }
];

/**
 * What a key sends while the sticky Ctrl is on: one letter or one of `@[\\]^_` (and space) becomes its control
 * character (`r` → Ctrl-R, 0x12), `?` becomes DEL; anything else (an arrow's escape sequence, a paste, a
 * digit) goes as it is, since a terminal has no Ctrl form of it.
 */
export function ctrlChord(data: string): string {
	if (data.length !== 1) return data;
	if (data === '?') return '\x7f';
	if (data === ' ') return '\x00';
	const code = data.toUpperCase().charCodeAt(0);
	return code >= 64 && code <= 95 ? String.fromCharCode(code - 64) : data;
}

/** The sticky Ctrl of the key bar: armed by its button, spent (and disarmed) by the next key from the bar or the
 * keyboard. */
export class StickyCtrl {
	armed = false;

	toggle(): boolean {
		this.armed = !this.armed;
		return this.armed;
	}

	/** The bytes to send for `data`, with Ctrl applied once if armed. */
	apply(data: string): string {
		if (!this.armed) return data;
		this.armed = false;
		return ctrlChord(data);
	}
}

/** xterm.js theme colours. */
export interface TermColors {
	background: string;
	foreground: string;
	cursor: string;
	cursorAccent: string;
	selectionBackground: string;
	black?: string;
	red?: string;
	green?: string;
	yellow?: string;
	blue?: string;
	magenta?: string;
	cyan?: string;
	white?: string;
	brightBlack?: string;
	brightWhite?: string;
	brightYellow?: string;
}

// On a light background xterm's default yellow and white are unreadable: darker ones, as light terminal
// themes do.
const LIGHT_ANSI = {
	black: '#1f2328',
	red: '#b42318',
	green: '#1a7f37',
	yellow: '#8a6100',
	blue: '#0550ae',
	magenta: '#8250df',
	cyan: '#0e7490',
	white: '#6e7781',
	brightBlack: '#57606a',
	brightWhite: '#8c959f',
	brightYellow: '#9a6700'
};

/** The terminal's colours from the skin's CSS tokens (`--code-bg`, `--code-text`, `--accent`). */
export function termColors(token: (name: string) => string, dark: boolean): TermColors {
	const bg = token('--code-bg') || (dark ? '#11141c' : '#f6f8fa');
	const fg = token('--code-text') || (dark ? '#e6e8ef' : '#1b1e2b');
	const accent = token('--accent') || fg;
	return {
		background: bg,
		foreground: fg,
		cursor: accent,
		cursorAccent: bg,
		selectionBackground: dark ? 'rgba(255, 255, 255, 0.25)' : 'rgba(0, 0, 0, 0.18)',
		...(dark ? {} : LIGHT_ANSI)
	};
}
