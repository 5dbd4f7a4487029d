import { describe, expect, it } from 'vitest';
import type { PiMessage, ServerFrame } from '../api/protocol';
import {
	applyReplay,
	connectionOpened,
	dismissDialog,
	initialChat,
	localEcho,
	messagesOf,
	reduce,
	workingLabel,
	type ChatState
} from './reducer';

const user = (text: string, ts = 1): PiMessage => ({ role: 'user', content: [{ type: 'text', text }], timestamp: ts });
const assistant = (text: string): PiMessage => ({ role: 'assistant', content: [{ type: 'text', text }] });
const toolResult = (id: string): PiMessage => ({ role: 'toolResult', toolCallId: id, toolName: 'bash', content: [{ type: 'text', text: 'ok' }] });

function run(frames: ServerFrame[], state: ChatState = initialChat()): ChatState {
	return frames.reduce(reduce, state);
}

describe('streaming', () => {
	it('shows the partial message while streaming and commits it on message_end', () => {
		const partial = assistant('Hel');
		let s = run([
			{ type: 'agent_start' },
			{ type: 'message_start', message: assistant('') },
			{ type: 'message_update', message: partial, assistantMessageEvent: { type: 'text_delta', delta: 'Hel' } }
		]);
		expect(s.live).toBe(partial);
		expect(s.streaming).toBe(true);
		expect(workingLabel(s.working)).toBe('Responding…');
		s = reduce(s, { type: 'message_end', message: assistant('Hello') });
		expect(s.live).toBeNull();
		expect(messagesOf(s)).toEqual([assistant('Hello')]);
		s = reduce(s, { type: 'agent_end', messages: [assistant('Hello')] });
		expect(s.streaming).toBe(false);
		expect(messagesOf(s)).toHaveLength(1); // agent_end.messages is ignored
		expect(workingLabel(s.working)).toBeNull();
	});

	it('builds the live bubble from text deltas when the event has no message', () => {
		const s = run([
			{ type: 'message_update', assistantMessageEvent: { type: 'text_delta', delta: 'a' } },
			{ type: 'message_update', assistantMessageEvent: { type: 'text_delta', delta: 'b' } }
		]);
		expect(s.live?.content).toEqual([{ type: 'text', text: 'ab' }]);
		expect(s.streaming).toBe(true);
	});

	it('returns the same state for frames it ignores', () => {
		const s = initialChat();
		expect(reduce(s, { type: 'turn_start' })).toBe(s);
		expect(reduce(s, { type: 'auto_compaction_start' })).toBe(s);
	});
});

describe('compact streaming updates', () => {
	const delta = (d: string) => ({ type: 'text_delta', contentIndex: 0, delta: d });
	const compact = (d: string): ServerFrame => ({
		type: 'message_update',
		assistantMessageEvent: delta(d),
		piface_patch: [{ path: ['content', 0, 'text'], append: d }]
	});

	it('applies patches to the partial of message_start and of full updates', () => {
		let s = run([{ type: 'agent_start' }, { type: 'message_start', message: assistant('') }, compact('Hel'), compact('lo')]);
		expect(s.live).toEqual(assistant('Hello'));
		expect(s.resync).toBe(false);
		expect(workingLabel(s.working)).toBe('Responding…');
		s = run([{ type: 'message_update', message: assistant('Hi'), assistantMessageEvent: delta('Hi') }, compact('!')], s);
		expect(s.live).toEqual(assistant('Hi!'));
		s = reduce(s, {
			type: 'message_update',
			assistantMessageEvent: { type: 'toolcall_start', contentIndex: 1 },
			piface_patch: [
				{ path: ['content', 1], set: { type: 'toolCall', id: 'c1', name: 'bash', arguments: {} } },
				{ path: ['stopReason'], set: 'toolUse' }
			]
		});
		expect(s.live).toEqual({ ...assistant('Hi!'), content: [{ type: 'text', text: 'Hi!' }, { type: 'toolCall', id: 'c1', name: 'bash', arguments: {} }], stopReason: 'toolUse' });
		s = reduce(s, { type: 'message_end', message: assistant('Hi!') });
		expect(s.live).toBeNull();
		expect(messagesOf(s)).toEqual([assistant('Hi!')]);
	});

	it('keeps the previous partial unchanged (the view may still show it)', () => {
		const start = assistant('a');
		const s = run([{ type: 'message_start', message: start }, compact('b')]);
		expect(start).toEqual(assistant('a'));
		expect(s.live).toEqual(assistant('ab'));
	});

	it('without a base: keeps the state, flags a resync and waits for a full update', () => {
		let s = run([{ type: 'agent_start' }, compact('lost')]);
		expect(s.live).toBeNull();
		expect(s.resync).toBe(true);
		expect(s.streaming).toBe(true);
		s = reduce(s, compact('still lost'));
		expect(s.live).toBeNull();
		s = run([{ type: 'message_update', message: assistant('full'), assistantMessageEvent: delta('full') }, compact('!')], s);
		expect(s.resync).toBe(false);
		expect(s.live).toEqual(assistant('full!'));
	});

	it('a patch that does not fit freezes the bubble until message_end', () => {
		let s = run([{ type: 'message_start', message: assistant('abc') }]);
		const shown = s.live;
		s = reduce(s, { type: 'message_update', assistantMessageEvent: delta('x'), piface_patch: [{ path: ['content', 3, 'text'], append: 'x' }] });
		expect(s.live).toBe(shown);
		expect(s.resync).toBe(true);
		// A later patch that would fit the stale partial is ignored all the same: the base is unknown.
		s = reduce(s, compact('d'));
		expect(s.live).toBe(shown);
		s = reduce(s, { type: 'message_end', message: assistant('abcxd') });
		expect(s.resync).toBe(false);
		expect(s.live).toBeNull();
		expect(messagesOf(s)).toEqual([assistant('abcxd')]);
	});

	it('a patch that turns the partial into something else is not taken', () => {
		let s = run([{ type: 'message_start', message: assistant('a') }]);
		s = reduce(s, { type: 'message_update', piface_patch: [{ path: [], set: 'not a message' }] });
		expect(s.live).toEqual(assistant('a'));
		expect(s.resync).toBe(true);
	});

	it('a replay and the next message_start clear the flag', () => {
		const s = run([{ type: 'agent_start' }, compact('x')]);
		expect(applyReplay(s, []).resync).toBe(false);
		expect(reduce(s, { type: 'message_start', message: assistant('') }).resync).toBe(false);
		expect(reduce(s, { type: 'agent_end' }).resync).toBe(false);
	});
});

describe('user messages and local echo', () => {
	it('replaces the local echo with pi\'s message, keeping its key', () => {
		let s = localEcho(initialChat(), 'hi');
		const key = s.items[0]!.key;
		s = reduce(s, { type: 'message_end', message: user('hi', 5) });
		expect(s.items).toEqual([{ key, message: user('hi', 5) }]);
	});

	it('appends user messages sent by another browser', () => {
		const s = reduce(initialChat(), { type: 'message_end', message: user('from elsewhere') });
		expect(messagesOf(s)).toEqual([user('from elsewhere')]);
	});
});

describe('tool calls', () => {
	it('adds a tool result once although pi reports it twice', () => {
		const s = run([
			{ type: 'message_end', message: toolResult('c1') },
			{ type: 'turn_end', message: assistant(''), toolResults: [toolResult('c1'), toolResult('c2')] }
		]);
		expect(messagesOf(s).map((m) => m.toolCallId)).toEqual(['c1', 'c2']);
	});

	it('tracks active and recent tools for the working indicator', () => {
		let s = run([
			{ type: 'agent_start' },
			{ type: 'tool_execution_start', toolCallId: 'a', toolName: 'bash' }
		]);
		expect(workingLabel(s.working)).toBe('Running bash…');
		s = run([{ type: 'tool_execution_start', toolCallId: 'b', toolName: 'read' }, { type: 'tool_execution_update', toolCallId: 'b', toolName: 'read' }], s);
		expect(workingLabel(s.working)).toBe('Running 2 tools…');
		s = run([
			{ type: 'tool_execution_end', toolCallId: 'a', toolName: 'bash', isError: true },
			{ type: 'tool_execution_end', toolCallId: 'b', toolName: 'read' }
		], s);
		expect(workingLabel(s.working)).toBe('Thinking…');
		expect(s.working.recent.map((t) => t.status)).toEqual(['error', 'done']);
		for (const id of ['c', 'd', 'e']) s = reduce(s, { type: 'tool_execution_end', toolCallId: id, toolName: 'x' });
		expect(s.working.recent.map((t) => t.id)).toEqual(['c', 'd', 'e']);
	});
});

describe('replay', () => {
	it('replaces the list and resets streaming state', () => {
		let s = run([{ type: 'agent_start' }, { type: 'message_start', message: assistant('') }], localEcho(initialChat(), 'x'));
		s = reduce(s, { type: 'piface_replay', messages: [user('x'), assistant('y')] });
		expect(messagesOf(s)).toEqual([user('x'), assistant('y')]);
		expect(s.live).toBeNull();
		expect(s.working.phase).toBe('idle');
		expect(s.replayed).toBe(true);
	});

	it('keeps the items (and their keys) when the content is the same', () => {
		const s = initialChat([user('x'), assistant('y')]);
		const next = applyReplay(s, [user('x'), assistant('y')]);
		expect(next.items).toBe(s.items);
	});

	it('never duplicates: a replay after live events shows each message once', () => {
		let s = run([
			{ type: 'message_end', message: user('q') },
			{ type: 'message_end', message: assistant('a') }
		]);
		s = reduce(s, { type: 'piface_replay', messages: [user('q'), assistant('a')] });
		expect(messagesOf(s)).toEqual([user('q'), assistant('a')]);
	});

	it('keeps `!!` results, which pi never replays, at their place', () => {
		const bang: PiMessage = { role: 'bashExecution', command: 'ls', output: 'a', exitCode: 0, excludeFromContext: true };
		const s = initialChat([user('q'), assistant('a'), bang, user('local echo')]);
		const next = applyReplay(s, [user('q'), assistant('a'), user('q2'), assistant('a2')]);
		expect(messagesOf(next)).toEqual([user('q'), assistant('a'), bang, user('q2'), assistant('a2')]);
		expect(messagesOf(applyReplay(initialChat([bang]), [user('x')]))).toEqual([bang, user('x')]);
		const same = initialChat([user('q'), bang]);
		expect(applyReplay(same, [user('q')]).items).toBe(same.items);
	});

	it('ignores a malformed replay as an empty one', () => {
		const s = reduce(initialChat([user('x')]), { type: 'piface_replay' });
		expect(s.items).toEqual([]);
	});
});

describe('bash responses', () => {
	it('turns `!` and `!!` responses into bash executions', () => {
		const s = run([
			{ type: 'response', command: 'bash', success: true, data: { output: 'hi\n', exitCode: 0, command: 'echo hi' } },
			{ type: 'response', command: 'bash', success: true, data: { output: '', exitCode: 2, command: 'false', excludeFromContext: true } },
			{ type: 'response', command: 'bash', success: false, error: 'spawn failed' }
		]);
		expect(messagesOf(s)).toEqual([
			{ role: 'bashExecution', command: 'echo hi', output: 'hi\n', exitCode: 0, cancelled: false, truncated: false },
			{ role: 'bashExecution', command: 'false', output: '', exitCode: 2, cancelled: false, truncated: false, excludeFromContext: true },
			{ role: 'bashExecution', command: '', output: 'spawn failed', exitCode: null, failed: true }
		]);
	});

	it('shows failed commands and piface errors as the inline error', () => {
		expect(reduce(initialChat(), { type: 'piface_error', message: 'Invalid JSON' }).error).toBe('Invalid JSON');
		expect(reduce(initialChat(), { type: 'response', command: 'compact', success: false, error: 'nothing' }).error).toBe('compact: nothing');
		expect(localEcho(reduce(initialChat(), { type: 'piface_error', message: 'x' }), 'y').error).toBeNull();
	});

	it('learns from get_state whether a turn is running', () => {
		const s = reduce(initialChat(), { type: 'response', command: 'get_state', success: true, data: { isStreaming: true } });
		expect(s.streaming).toBe(true);
		expect(reduce(s, { type: 'response', command: 'get_state', success: true, data: { isStreaming: false } }).streaming).toBe(false);
	});
});

describe('extension UI', () => {
	const confirm = { type: 'extension_ui_request', id: 'r1', method: 'confirm', title: 'Sure?' } as const;

	it('queues blocking dialogs once, from the request or the attention frame', () => {
		let s = run([confirm, { type: 'piface_attention_required', session_id: 's', request: { ...confirm } }]);
		expect(s.dialogs.map((d) => d.id)).toEqual(['r1']);
		s = dismissDialog(s, 'r1');
		expect(s.dialogs).toEqual([]);
	});

	it('drops dialogs at agent_end and on a new connection', () => {
		expect(run([confirm, { type: 'agent_end' }]).dialogs).toEqual([]);
		expect(connectionOpened(run([confirm])).dialogs).toEqual([]);
	});

	it('keeps notices and editor text from fire-and-forget requests', () => {
		const s = run([
			{ type: 'extension_ui_request', id: 'n', method: 'notify', message: 'hello' },
			{ type: 'extension_ui_request', id: 'e', method: 'set_editor_text', text: 'draft' },
			{ type: 'extension_ui_request', id: 's', method: 'setStatus' }
		]);
		expect(s.notices).toEqual(['hello']);
		expect(s.editorText).toBe('draft');
		expect(s.dialogs).toEqual([]);
	});
});
