// The chat WebSocket's messages (`shared/contract/websocket.md` plus Piface's additions in the README):
// what the UI sends, and the subset of pi's events and Piface's frames that it reads. pi's own events are
// relayed unchanged, so their types are loose on purpose: unknown fields and kinds pass through.

import type { AgentInfo, SessionRecord } from './types';

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
			error?: string;
			data?: Record<string, unknown> | null;
	  }
	| { type: string; [k: string]: unknown };

/** Messages the UI sends. */
export type ClientMessage =
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
