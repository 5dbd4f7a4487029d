// What the composer does with its text: slash commands (`/compact`, `/copy`, `/reload`), bang shortcuts
// (`!cmd`, `!!cmd`, run by the server), the pi command type for a send, and smart-punctuation normalisation.
// Contract: behaviour.md §5–6, ui.md "Composer".

/** The parsed intent of a composer submission. */
export type ComposerAction =
	| { kind: 'compact'; instructions?: string }
	| { kind: 'copy' }
	| { kind: 'reload' }
	| { kind: 'bash'; command: string; excludeFromContext: boolean }
	| { kind: 'prompt'; text: string }
	| { kind: 'empty' };

/** Parses the composer text. Slash commands are matched case-insensitively on the trimmed text. */
export function parseComposer(raw: string): ComposerAction {
	const text = raw.trim();
	if (!text) return { kind: 'empty' };
	const slash = /^\/(compact|copy|reload)(?:\s+([\s\S]*))?$/i.exec(text);
	if (slash) {
		const name = slash[1]!.toLowerCase();
		const rest = slash[2]?.trim() ?? '';
		if (name === 'compact') return rest ? { kind: 'compact', instructions: rest } : { kind: 'compact' };
		// `/copy foo` and `/reload foo` are not commands: they go to pi as prompts.
		if (!rest) return { kind: name as 'copy' | 'reload' };
	}
	const bang = parseBang(text);
	if (bang) return bang;
	return { kind: 'prompt', text };
}

/** `!!cmd` (server-run, excluded from context) or `!cmd` (pi runs it); an empty command is not a shortcut. */
export function parseBang(text: string): { kind: 'bash'; command: string; excludeFromContext: boolean } | null {
	if (text.startsWith('!!')) {
		const command = text.slice(2).replace(/^\s+/, '');
		return command ? { kind: 'bash', command, excludeFromContext: true } : null;
	}
	if (text.startsWith('!')) {
		const command = text.slice(1);
		return command.trim() ? { kind: 'bash', command, excludeFromContext: false } : null;
	}
	return null;
}

/** Why a submission cannot go with the pending attachments, or null when it can: slash commands and bang
 * shortcuts do not take attachments (behaviour.md §5–6); the attachments stay for the next message. */
export function attachmentRefusal(action: ComposerAction, attachments: number): string | null {
	if (attachments === 0) return null;
	if (action.kind === 'compact' || action.kind === 'copy' || action.kind === 'reload') {
		return `/${action.kind} does not take attachments: they were kept for your next message. Send /${action.kind} again once they are removed.`;
	}
	if (action.kind === 'bash') return 'Bash shortcuts (! / !!) do not take attachments: remove them or send a normal message.';
	return null;
}

/** Whether a submission shows as the user's bubble: prompts and bang shortcuts (as the original, `!ls` shows
 * as typed); slash commands act locally or on pi without a message. */
export function echoes(action: ComposerAction): boolean {
	return action.kind === 'prompt' || action.kind === 'bash';
}

/** Which pi command a send becomes: `prompt` when idle; while streaming `steer`, or `follow_up` with a modifier. */
export function sendType(streaming: boolean, mods: { altKey?: boolean; ctrlKey?: boolean; metaKey?: boolean } = {}): 'prompt' | 'steer' | 'follow_up' {
	if (!streaming) return 'prompt';
	return mods.altKey || mods.ctrlKey || mods.metaKey ? 'follow_up' : 'steer';
}

const PUNCTUATION: [RegExp, string][] = [
	[/[\u2018\u2019\u201A\u201B\u2032]/g, "'"],
	[/[\u201C\u201D\u201E\u201F\u2033]/g, '"'],
	[/[\u2014\u2015]/g, '--'],
	[/[\u2010\u2011\u2012\u2013\u2212]/g, '-'],
	[/\u2026/g, '...'],
	[/\u00A0/g, ' ']
];

/** Replaces phone keyboards' smart punctuation with the ASCII a shell or a model expects. */
export function normalizePunctuation(text: string): string {
	let out = text;
	for (const [re, to] of PUNCTUATION) out = out.replace(re, to);
	return out;
}

/** The `/reload` confirmation text. */
export const RELOAD_WARNING =
	'Reload restarts pi for this session (a compatibility restart): the running pi process is killed and the session is resumed from its session file. Anything pi is doing now is lost. Continue?';

/** Composer height: grows with content up to 40% of the viewport, never below `min`. */
export function composerHeight(contentHeight: number, viewportHeight: number, min = 44): number {
	const cap = Math.max(min, Math.floor(viewportHeight * 0.4));
	return Math.min(Math.max(contentHeight, min), cap);
}

/** Phones: at most this viewport width enables the fullscreen compose mode. */
export const MOBILE_MAX_WIDTH = 480;
