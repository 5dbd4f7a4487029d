// Reading pi messages for display: visible text, thinking text, tool calls and the error line of a failed
// turn. Pure functions; rendering lives in the components.

import type { ContentPart, PiMessage } from '../api/protocol';

function parts(msg: PiMessage): ContentPart[] {
	if (typeof msg.content === 'string') return [{ type: 'text', text: msg.content }];
	return Array.isArray(msg.content) ? msg.content : [];
}

/** Concatenated `text` parts. */
export function messageText(msg: PiMessage): string {
	let out = '';
	for (const p of parts(msg)) if (p.type === 'text' && typeof p.text === 'string') out += p.text;
	return out;
}

/** Concatenated `thinking` parts. */
export function thinkingText(msg: PiMessage): string {
	let out = '';
	for (const p of parts(msg)) if (p.type === 'thinking' && typeof p.thinking === 'string') out += p.thinking;
	return out;
}

/** The `toolCall` parts of an assistant message. */
export function toolCalls(msg: PiMessage): { id: string; name: string; arguments: unknown }[] {
	const out: { id: string; name: string; arguments: unknown }[] = [];
	for (const p of parts(msg)) {
		if (p.type === 'toolCall') out.push({ id: String(p.id ?? ''), name: String(p.name ?? 'tool'), arguments: p.arguments });
	}
	return out;
}

/** `Model request failed: <detail>` for an assistant message without text but with `errorMessage`. */
export function errorLine(msg: PiMessage): string | null {
	if (msg.role !== 'assistant' || messageText(msg).trim() !== '' || !msg.errorMessage) return null;
	return `Model request failed: ${errorDetail(msg.errorMessage)}`;
}

/** The readable part of an error: JSON `detail`/`error`/`message` when the text is (or ends in) JSON. */
export function errorDetail(raw: string): string {
	const text = raw.trim();
	const start = text.indexOf('{');
	if (start >= 0) {
		try {
			const json: unknown = JSON.parse(text.slice(start));
			const found = pick(json);
			if (found) return found;
		} catch {
			// Not JSON: the plain text is the detail.
		}
	}
	return text;
}

function pick(v: unknown): string | null {
	if (typeof v === 'string') return v;
	if (!v || typeof v !== 'object') return null;
	const o = v as Record<string, unknown>;
	for (const k of ['detail', 'error', 'message']) {
		const found = pick(o[k]);
		if (found) return found;
	}
	return null;
}

/** The text the user sees for an assistant message (`/copy`, TTS): its text, or the error line. */
export function visibleAssistantText(msg: PiMessage): string {
	const text = messageText(msg);
	return text.trim() ? text : (errorLine(msg) ?? '');
}

/** The latest assistant message with visible text (what `/copy` copies), or null. */
export function latestAssistantText(messages: readonly PiMessage[]): string | null {
	for (let i = messages.length - 1; i >= 0; i--) {
		const m = messages[i];
		if (m?.role !== 'assistant') continue;
		const t = visibleAssistantText(m);
		if (t.trim()) return t;
	}
	return null;
}

/** `name(arg1, arg2)`: a tool call's one-line label with its argument values, each shortened. */
export function toolCallLabel(name: string, args: unknown): string {
	const values = args && typeof args === 'object' && !Array.isArray(args) ? Object.values(args) : [];
	const shown = values.map((v) => shorten(typeof v === 'string' ? v : JSON.stringify(v) ?? '', 60));
	return `${name}(${shown.join(', ')})`;
}

function shorten(s: string, max: number): string {
	const oneLine = s.replace(/\s+/g, ' ').trim();
	return oneLine.length > max ? `${oneLine.slice(0, max - 1)}…` : oneLine;
}

/** Text of a tool result (`toolResult` message): its text parts. */
export function toolResultText(msg: PiMessage): string {
	return messageText(msg);
}

/** What a bash execution shows: `$ <command>\n<output>` plus the excluded-from-context note. */
export function bashText(msg: PiMessage): string {
	let out = `$ ${msg.command ?? ''}\n${msg.output ?? ''}`;
	if (msg.truncated) out += '\n(output truncated)';
	if (msg.cancelled) out += '\n(cancelled)';
	if (msg.excludeFromContext) out += '\n(excluded from model context)';
	return out;
}

/** Plain text of a user message, for its bubble. */
export function userText(msg: PiMessage): string {
	const text = messageText(msg);
	if (text) return text;
	const images = parts(msg).filter((p) => p.type === 'image').length;
	return images ? `[attached ${images} file(s)]` : '';
}
