// The chat feed as a pure reducer over the WebSocket's frames: `reduce(state, frame)` returns the next state
// (a new object whenever anything changed, the same one otherwise), so the view can keep it in `$state.raw`.
//
// What it does not do: render, talk to the socket, play sounds or touch storage. Those react to frames in
// the session page; this module only decides what the feed shows.
//
// Differences from the original's rules, because pi 0.73 emits tool results twice (as `message_end` with
// role `toolResult` *and* in `turn_end.toolResults`): tool results from `turn_end` are only added when no
// item has the same `toolCallId`; user messages from `message_end` replace the oldest local echo instead of
// being ignored, so a second browser sees the prompts of the first one.
//
// Streaming updates come in two shapes (compact mode, `?mode=compact`): a full `message_update` carries the
// whole partial `message`, which becomes `live`; a compact one carries `piface_patch`, applied to `live`
// (chat/patch.ts). A compact update that cannot be applied (no live partial, or a patch that does not fit)
// leaves `live` as it was and sets `resync`: the bubble then stands still, and further compact updates are
// ignored, until the next full update, `message_start` or `message_end` gives a base again. The server sends
// a full update whenever this connection has no base (after connecting, after a replay), so this only
// happens when something went wrong; asking for a replay mid-stream would reset the working indicator too.

import type { ExtensionUiRequest, PiMessage, ServerFrame } from '../api/protocol';
import { applyPatch, type PatchOp } from './patch';

/** One row of the feed: a pi message with a stable key for keyed rendering. */
export interface ChatItem {
	key: number;
	message: PiMessage;
	/** A user message echoed locally on send, not yet confirmed by pi's `message_end`. */
	local?: boolean;
}

export interface RecentTool {
	id: string;
	name: string;
	status: 'done' | 'error';
}

/** The working indicator's state (contract: ui.md, "Working indicator"). */
export interface WorkingState {
	phase: 'idle' | 'thinking' | 'responding' | 'tools';
	active: { id: string; name: string }[];
	recent: RecentTool[];
}

export interface ChatState {
	items: ChatItem[];
	nextKey: number;
	/** The assistant message being streamed, as pi's latest partial message. */
	live: PiMessage | null;
	/** A compact update did not fit `live`: compact updates are ignored until a full message arrives. */
	resync: boolean;
	/** pi is running a turn (between `agent_start` and `agent_end`). */
	streaming: boolean;
	working: WorkingState;
	/** The latest `piface_error` or failed command, shown under the composer. */
	error: string | null;
	/** Blocking extension dialogs waiting for this browser's answer, oldest first. */
	dialogs: ExtensionUiRequest[];
	/** Recent `notify` texts from extensions (newest last, at most 3). */
	notices: string[];
	/** Text an extension asked to put into the composer (`set_editor_text`), consumed by the view. */
	editorText: string | null;
	/** A replay has been applied at least once. */
	replayed: boolean;
}

/** How many finished tools the indicator remembers. */
export const RECENT_TOOLS = 3;

const IDLE: WorkingState = { phase: 'idle', active: [], recent: [] };
const BLOCKING = new Set(['select', 'confirm', 'input', 'editor']);

export function initialChat(messages: readonly PiMessage[] = []): ChatState {
	return {
		items: messages.map((message, i) => ({ key: i, message })),
		nextKey: messages.length,
		live: null,
		resync: false,
		streaming: false,
		working: IDLE,
		error: null,
		dialogs: [],
		notices: [],
		editorText: null,
		replayed: false
	};
}

/** The committed messages, in order (what snapshots store and replays are compared with). */
export function messagesOf(state: ChatState): PiMessage[] {
	return state.items.map((i) => i.message);
}

/** Adds the local echo of a prompt the user just sent. */
export function localEcho(state: ChatState, text: string): ChatState {
	const message: PiMessage = { role: 'user', content: [{ type: 'text', text }] };
	return { ...state, items: [...state.items, { key: state.nextKey, message, local: true }], nextKey: state.nextKey + 1, error: null };
}

/** Removes a dialog once this browser answered it. */
export function dismissDialog(state: ChatState, id: string): ChatState {
	return { ...state, dialogs: state.dialogs.filter((d) => d.id !== id) };
}

export function clearError(state: ChatState): ChatState {
	return state.error === null ? state : { ...state, error: null };
}

export function setError(state: ChatState, error: string): ChatState {
	return { ...state, error };
}

/** Forgets dialogs when a connection opens: the server re-sends the pending ones right after. */
export function connectionOpened(state: ChatState): ChatState {
	return state.dialogs.length ? { ...state, dialogs: [] } : state;
}

export function consumeEditorText(state: ChatState): ChatState {
	return state.editorText === null ? state : { ...state, editorText: null };
}

/** Replaces the feed with `messages` unless it already shows exactly them (contract: replay only on change).
 * `!!` results, which pi never sees and so never replays, are kept at their place. */
export function applyReplay(state: ChatState, replay: readonly PiMessage[]): ChatState {
	const base = { ...state, live: null, resync: false, working: IDLE, streaming: false, replayed: true };
	const messages = keepExcluded(messagesOf(state), replay);
	if (sameMessages(messagesOf(state), messages)) return base;
	return {
		...base,
		items: messages.map((message, i) => ({ key: state.nextKey + i, message })),
		nextKey: state.nextKey + messages.length
	};
}

function isExcluded(m: PiMessage | undefined): boolean {
	return m?.role === 'bashExecution' && m.excludeFromContext === true;
}

/** `replay` with the shown `!!` results put back, each after the message it followed (or at the end). */
export function keepExcluded(shown: readonly PiMessage[], replay: readonly PiMessage[]): PiMessage[] {
	if (!shown.some(isExcluded)) return replay.slice();
	const out = replay.slice();
	let anchor = -1; // Index in `out` of the last shown message that the replay also has.
	let searchFrom = 0;
	for (const m of shown) {
		if (isExcluded(m)) {
			out.splice(anchor + 1, 0, m);
			anchor += 1;
			searchFrom = anchor + 1;
			continue;
		}
		const key = JSON.stringify(m);
		for (let j = searchFrom; j < out.length; j++) {
			if (out[j] === m || JSON.stringify(out[j]) === key) {
				anchor = j;
				searchFrom = j + 1;
				break;
			}
		}
	}
	return out;
}

/** Whether two message lists serialise identically. */
export function sameMessages(a: readonly PiMessage[], b: readonly PiMessage[]): boolean {
	if (a.length !== b.length) return false;
	for (let i = 0; i < a.length; i++) {
		if (a[i] !== b[i] && JSON.stringify(a[i]) !== JSON.stringify(b[i])) return false;
	}
	return true;
}

function append(state: ChatState, message: PiMessage): ChatState {
	return { ...state, items: [...state.items, { key: state.nextKey, message }], nextKey: state.nextKey + 1 };
}

function hasToolResult(state: ChatState, toolCallId: string | undefined): boolean {
	if (!toolCallId) return false;
	for (let i = state.items.length - 1; i >= 0; i--) {
		const m = state.items[i]?.message;
		if (m?.role === 'toolResult' && m.toolCallId === toolCallId) return true;
	}
	return false;
}

function working(state: ChatState, w: WorkingState): ChatState {
	return { ...state, working: w };
}

/** Marks a turn as running (events can arrive mid-turn after a reconnect, without `agent_start`). */
function running(state: ChatState): ChatState {
	if (state.streaming && state.working.phase !== 'idle') return state;
	return { ...state, streaming: true, working: state.working.phase === 'idle' ? { ...state.working, phase: 'thinking' } : state.working };
}

/** The next state after one server frame. */
export function reduce(state: ChatState, frame: ServerFrame): ChatState {
	switch (frame.type) {
		case 'piface_replay': {
			const f = frame as { messages?: PiMessage[] };
			return applyReplay(state, Array.isArray(f.messages) ? f.messages : []);
		}
		case 'piface_error':
			return setError(state, String((frame as { message?: unknown }).message ?? 'Error'));
		case 'agent_start':
			return { ...state, streaming: true, working: { phase: 'thinking', active: [], recent: [] } };
		case 'agent_end':
			return { ...state, streaming: false, live: null, resync: false, working: IDLE, dialogs: [] };
		case 'message_start': {
			const m = (frame as { message?: PiMessage }).message;
			if (m?.role !== 'assistant') return state;
			return { ...running(state), live: m, resync: false };
		}
		case 'message_update': {
			const f = frame as { message?: PiMessage; piface_patch?: PatchOp[]; assistantMessageEvent?: { type?: string; delta?: string } };
			let next = running(state);
			const ev = f.assistantMessageEvent;
			if (f.message && f.message.role === 'assistant') {
				next = { ...next, live: f.message, resync: false };
			} else if (f.piface_patch !== undefined) {
				next = patched(next, f.piface_patch);
			} else if (ev?.type === 'text_delta' && typeof ev.delta === 'string') {
				const prev = next.live ?? { role: 'assistant', content: [] };
				next = { ...next, live: { ...prev, content: [{ type: 'text', text: liveText(prev) + ev.delta }] } };
			}
			if (ev?.type === 'text_delta' && next.working.active.length === 0 && next.working.phase !== 'responding') {
				next = working(next, { ...next.working, phase: 'responding' });
			}
			return next;
		}
		case 'message_end': {
			const m = (frame as { message?: PiMessage }).message;
			if (!m || typeof m !== 'object') return state;
			let next: ChatState = m.role === 'assistant' ? { ...state, live: null, resync: false } : state;
			if (m.role === 'user') {
				const i = next.items.findIndex((it) => it.local);
				if (i >= 0) {
					const items = next.items.slice();
					items[i] = { key: items[i]!.key, message: m };
					return { ...next, items };
				}
			}
			if (m.role === 'toolResult' && hasToolResult(next, m.toolCallId)) return next;
			return append(next, m);
		}
		case 'turn_end': {
			const results = (frame as { toolResults?: PiMessage[] }).toolResults;
			let next = state;
			if (Array.isArray(results)) {
				for (const r of results) {
					if (r && r.role !== 'user' && !hasToolResult(next, r.toolCallId)) next = append(next, r);
				}
			}
			return next;
		}
		case 'tool_execution_start':
		case 'tool_execution_update': {
			const f = frame as { toolCallId?: string; toolName?: string };
			const id = String(f.toolCallId ?? '');
			const next = running(state);
			if (next.working.active.some((t) => t.id === id)) {
				return next.working.phase === 'tools' ? next : working(next, { ...next.working, phase: 'tools' });
			}
			return working(next, {
				...next.working,
				phase: 'tools',
				active: [...next.working.active, { id, name: String(f.toolName ?? 'tool') }]
			});
		}
		case 'tool_execution_end': {
			const f = frame as { toolCallId?: string; toolName?: string; isError?: boolean };
			const id = String(f.toolCallId ?? '');
			const active = state.working.active.filter((t) => t.id !== id);
			const recent = [...state.working.recent, { id, name: String(f.toolName ?? 'tool'), status: f.isError ? 'error' : 'done' } as RecentTool].slice(-RECENT_TOOLS);
			return working(state, { phase: active.length ? 'tools' : 'thinking', active, recent });
		}
		case 'extension_ui_request':
			return extensionRequest(state, frame as unknown as ExtensionUiRequest);
		case 'piface_attention_required': {
			const req = (frame as { request?: ExtensionUiRequest }).request;
			return req ? extensionRequest(state, req) : state;
		}
		case 'response':
			return response(state, frame as ResponseFrame);
		default:
			return state;
	}
}

interface ResponseFrame {
	id?: string;
	command?: string;
	success?: boolean;
	error?: string;
	data?: Record<string, unknown> | null;
}

function response(state: ChatState, f: ResponseFrame): ChatState {
	if (f.command === 'bash') {
		const d = f.data ?? {};
		const message: PiMessage =
			f.success === false
				? { role: 'bashExecution', command: String(d.command ?? ''), output: f.error ?? 'bash failed', exitCode: null, failed: true }
				: {
						role: 'bashExecution',
						command: String(d.command ?? ''),
						output: String(d.output ?? ''),
						exitCode: typeof d.exitCode === 'number' ? d.exitCode : null,
						cancelled: d.cancelled === true,
						truncated: d.truncated === true,
						...(d.excludeFromContext === true ? { excludeFromContext: true } : {})
					};
		return append(state, message);
	}
	if (f.command === 'get_state' && f.success && f.data && typeof f.data.isStreaming === 'boolean') {
		if (!f.data.isStreaming) return state.streaming ? { ...state, streaming: false, working: IDLE, live: null, resync: false } : state;
		return running(state);
	}
	if (f.success === false && f.error) return setError(state, `${f.command ?? 'command'}: ${f.error}`);
	return state;
}

function extensionRequest(state: ChatState, req: ExtensionUiRequest): ChatState {
	if (!req || typeof req.id !== 'string') return state;
	if (BLOCKING.has(req.method)) {
		if (state.dialogs.some((d) => d.id === req.id)) return state;
		return { ...state, dialogs: [...state.dialogs, req] };
	}
	if (req.method === 'notify' && req.message) return { ...state, notices: [...state.notices, req.message].slice(-3) };
	if (req.method === 'set_editor_text' && typeof req.text === 'string') return { ...state, editorText: req.text };
	return state;
}

/** `state` with a compact update's patch applied to the live partial (see the top of the file for when it is
 * not). */
function patched(state: ChatState, ops: PatchOp[]): ChatState {
	if (state.resync) return state;
	if (!state.live) return { ...state, resync: true };
	try {
		const live = applyPatch(state.live, ops);
		if (!live || typeof live !== 'object' || live.role !== 'assistant') return { ...state, resync: true };
		return { ...state, live };
	} catch {
		return { ...state, resync: true };
	}
}

function liveText(m: PiMessage): string {
	if (typeof m.content === 'string') return m.content;
	let out = '';
	for (const p of m.content ?? []) if (p.type === 'text' && typeof p.text === 'string') out += p.text;
	return out;
}

/** The indicator's label: `Thinking…`, `Responding…`, `Running bash…`, `Running 2 tools…`, or null when idle. */
export function workingLabel(w: WorkingState): string | null {
	if (w.active.length === 1) return `Running ${w.active[0]!.name}…`;
	if (w.active.length > 1) return `Running ${w.active.length} tools…`;
	if (w.phase === 'responding') return 'Responding…';
	if (w.phase === 'thinking' || w.phase === 'tools') return 'Thinking…';
	return null;
}
