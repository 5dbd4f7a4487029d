// The chat WebSocket's messages (`shared/contract/websocket.md` plus Piface's additions in the README):
// what the UI sends, and the subset of pi's events and Piface's frames that it reads. pi's own events are
// relayed unchanged, so their types are loose on purpose: unknown fields and kinds pass through. The frames
// the coordinator writes itself (and the dashboard socket's) come with their key lists in the server's
// order, which api/fixtures.spec.ts checks against the golden fixtures that `cargo test` writes.

import type { AgentInfo, Assert, ListsAllKeys, SessionRecord } from './types';

/** A content part of a pi message. */
export type ContentPart =
	| { type: 'text'; text: string }
	| { type: 'thinking'; thinking: string }
	| { type: 'toolCall'; id: string; name: string; arguments: Record<string, unknown> | unknown }
	| { type: 'image'; data?: string; mimeType?: string }
	| { type: string; [k: string]: unknown };

/** A pi message (`message_end.message`, `get_messages` entries, history lines). */
export interface PiMessage {
	role: 'user' | 'assistant' | 'toolResult' | 'bashExecution' | string;
	content?: string | ContentPart[];
	timestamp?: number;
	errorMessage?: string;
	stopReason?: string;
	toolCallId?: string;
	toolName?: string;
	isError?: boolean;
	/** `bashExecution` messages. */
	command?: string;
	output?: string;
	exitCode?: number | null;
	cancelled?: boolean;
	truncated?: boolean;
	excludeFromContext?: boolean;
	[k: string]: unknown;
}

/** A blocking or fire-and-forget extension UI request from pi. */
export interface ExtensionUiRequest {
	type?: 'extension_ui_request';
	id: string;
	method: 'select' | 'confirm' | 'input' | 'editor' | 'notify' | 'setStatus' | 'setWidget' | 'setTitle' | 'set_editor_text' | string;
	title?: string;
	message?: string;
	options?: string[];
	placeholder?: string;
	prefill?: string;
	text?: string;
	notifyType?: string;
	timeout?: number;
}

/** An object key or an array index in a `piface_patch` path. */
export type PathElement = string | number;

/** One operation of a compact `message_update`'s `piface_patch` (compact mode, `?mode=compact`), applied to
 * the previous live partial message: append to the string at `path`, set the value at `path` (an index equal
 * to the array's length pushes; `[]` is the whole message), or delete the object key at `path`. */
export type PatchOp =
	| { path: PathElement[]; append: string }
	| { path: PathElement[]; set: unknown }
	| { path: PathElement[]; delete: true };

/** Frames the server sends (`type` decides; anything else is a pi event the reducer may ignore). */
export type ServerFrame =
	| { type: 'piface_session_state'; session: SessionRecord }
	| { type: 'piface_replay'; messages: PiMessage[] }
	| { type: 'piface_error'; message: string }
	| { type: 'piface_attention_required'; session_id: string; request: ExtensionUiRequest }
	| { type: 'agent_start' }
	| { type: 'agent_end'; messages?: PiMessage[] }
	| { type: 'turn_start' }
	| { type: 'turn_end'; message?: PiMessage; toolResults?: PiMessage[] }
	| { type: 'message_start'; message: PiMessage }
	| {
			type: 'message_update';
			/** The whole partial message: always in full mode; in compact mode when the client has no base. */
			message?: PiMessage;
			assistantMessageEvent?: { type: string; delta?: string; [k: string]: unknown };
			/** Compact mode: the changes since the previous partial, instead of `message`. */
			piface_patch?: PatchOp[];
	  }
	| { type: 'message_end'; message: PiMessage }
	| { type: 'tool_execution_start'; toolCallId: string; toolName: string; args?: unknown }
	| { type: 'tool_execution_update'; toolCallId: string; toolName: string; partialResult?: unknown }
	| { type: 'tool_execution_end'; toolCallId: string; toolName: string; isError?: boolean; result?: unknown }
	| ({ type: 'extension_ui_request' } & ExtensionUiRequest)
	| {
			type: 'response';
			id?: string;
			command?: string;
			success?: boolean;
			/** On success; for a `!!` command, a `ShellData`. */
			data?: Record<string, unknown> | null;
			/** On failure. */
			error?: string;
	  }
	| { type: string; [k: string]: unknown };

/** The `data` of a `!!` command's `response` (`command: "bash"`): pi's own `bash` response data, plus the
 * command as typed and `excludeFromContext`, so the feed shows it as pi's `bashExecution` messages show. */
export interface ShellData {
	output: string;
	exitCode: number | null;
	cancelled: boolean;
	truncated: boolean;
	command: string;
	excludeFromContext: boolean;
}

/** `ShellData`'s keys in the order the server writes them. */
export const SHELL_DATA_KEYS = ['output', 'exitCode', 'cancelled', 'truncated', 'command', 'excludeFromContext'] as const satisfies readonly (keyof ShellData)[];

/** The kinds of frame the coordinator itself writes to a session's socket, between the pi events it relays: its
 * own `piface_*` frames, a `!!` command's `response`, and compact mode's `message_update`. */
export type SessionFrameType = 'piface_session_state' | 'piface_error' | 'piface_replay' | 'piface_attention_required' | 'response' | 'message_update';

/** Each kind as the coordinator writes it: a `message_update` in compact form, with `piface_patch` instead of
 * pi's `message` (full mode relays pi's line as pi wrote it). */
type CoordinatorFrame<T extends SessionFrameType> = T extends 'message_update'
	? Omit<Extract<ServerFrame, { type: T }>, 'message'>
	: Extract<ServerFrame, { type: T }>;

/** The keys of each frame kind the coordinator writes to a session's socket, in its order; `response` has
 * `data` on success and `error` on failure, never both. The golden fixtures (fixtures/browser/session/) must
 * match, and a fixture of a kind missing here fails api/fixtures.spec.ts: the UI has to learn it first.
 *
 * A compact `message_update` is pi's event with `message` (and `assistantMessageEvent.partial`) cut out and
 * `piface_patch` put last: the other members keep pi's order, so the fixture's order (`assistantMessageEvent`
 * before `type`) is that of the coordinator test's input, which serde_json sorts. */
export const SESSION_FRAME_KEYS = {
	piface_session_state: ['type', 'session'],
	piface_error: ['type', 'message'],
	piface_replay: ['type', 'messages'],
	piface_attention_required: ['type', 'session_id', 'request'],
	response: ['type', 'id', 'command', 'success', 'data', 'error'],
	message_update: ['assistantMessageEvent', 'type', 'piface_patch']
} as const satisfies { [T in SessionFrameType]: readonly (keyof CoordinatorFrame<T>)[] };

/** What a `PatchOp` does. */
export type PatchOpKind = 'append' | 'set' | 'delete';

/** The keys of each kind of `PatchOp`, in the order the server writes them (serde_json's, sorted). */
export const PATCH_OP_KEYS = {
	append: ['append', 'path'],
	set: ['path', 'set'],
	delete: ['delete', 'path']
} as const satisfies { [K in PatchOpKind]: readonly (keyof Extract<PatchOp, Record<K, unknown>>)[] };

/** Frames of Piface's own that the UI sends on a session's socket (pi's commands pass through untyped): the
 * coordinator reads them as `frames::BrowserFrame`. `piface_visibility` says whether the page is visible, on
 * every open and whenever it changes; while one of a session's pages is, nothing about it is pushed. */
export type BrowserFrame = { type: 'piface_visibility'; visible: boolean };

/** The keys of each browser frame, in the order the UI writes them (fixtures/browser/client/). */
export const BROWSER_FRAME_KEYS = {
	piface_visibility: ['type', 'visible']
} as const satisfies { [T in BrowserFrame['type']]: readonly (keyof Extract<BrowserFrame, { type: T }>)[] };

/** Why a Web Push was sent. */
export type NotificationKind = 'turn_end' | 'attention' | 'exited' | 'agent_down' | 'test';

/** What a Web Push carries to the service worker (decrypted by the browser): `frames::Notification`. `url` is a
 * path on this origin that a tap opens; a notification with the same `tag` replaces the older one. */
export interface PushNotification {
	type: 'piface_notification';
	kind: NotificationKind;
	title: string;
	body: string;
	url: string;
	tag: string;
	session_id: string | null;
}

/** `PushNotification`'s keys in the server's order (fixtures/browser/push/). */
export const PUSH_NOTIFICATION_KEYS = ['type', 'kind', 'title', 'body', 'url', 'tag', 'session_id'] as const satisfies readonly (keyof PushNotification)[];

/** Messages the UI sends. */
export type ClientMessage =
	| BrowserFrame
	| { type: 'piface_get_history' }
	| { type: 'prompt' | 'steer' | 'follow_up'; message: string; piface_upload_ids: string[] }
	| { type: 'abort' }
	| { type: 'set_thinking_level'; level: string }
	| { type: 'compact'; customInstructions?: string }
	| { type: 'extension_ui_response'; id: string; value?: string; confirmed?: boolean; cancelled?: true };

/** Frames of `/ws/dashboard`: a snapshot on every connect, then changes as they happen. Unknown kinds may
 * come later; readers skip them. */
export type DashboardFrame =
	| { type: 'piface_dashboard'; sessions: SessionRecord[]; agents: AgentInfo[] }
	| { type: 'piface_session'; session: SessionRecord }
	| { type: 'piface_session_removed'; piface_id: string }
	| { type: 'piface_agent'; agent: AgentInfo };

/** The keys of each dashboard frame, in the server's order (fixtures/browser/dashboard/; see
 * `SESSION_FRAME_KEYS`). */
export const DASHBOARD_FRAME_KEYS = {
	piface_dashboard: ['type', 'sessions', 'agents'],
	piface_session: ['type', 'session'],
	piface_session_removed: ['type', 'piface_id'],
	piface_agent: ['type', 'agent']
} as const satisfies { [T in DashboardFrame['type']]: readonly (keyof Extract<DashboardFrame, { type: T }>)[] };

// The frame key lists name every field of their frame types (and every kind: the mapped types above).
export type FrameKeyListsComplete = [
	Assert<ListsAllKeys<ShellData, typeof SHELL_DATA_KEYS>>,
	Assert<{ [K in PatchOpKind]: ListsAllKeys<Extract<PatchOp, Record<K, unknown>>, (typeof PATCH_OP_KEYS)[K]> }[PatchOpKind]>,
	Assert<{ [T in SessionFrameType]: ListsAllKeys<CoordinatorFrame<T>, (typeof SESSION_FRAME_KEYS)[T]> }[SessionFrameType]>,
	Assert<{ [T in DashboardFrame['type']]: ListsAllKeys<Extract<DashboardFrame, { type: T }>, (typeof DASHBOARD_FRAME_KEYS)[T]> }[DashboardFrame['type']]>,
	Assert<{ [T in BrowserFrame['type']]: ListsAllKeys<Extract<BrowserFrame, { type: T }>, (typeof BROWSER_FRAME_KEYS)[T]> }[BrowserFrame['type']]>,
	Assert<ListsAllKeys<PushNotification, typeof PUSH_NOTIFICATION_KEYS>>
];
