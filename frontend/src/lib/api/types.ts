// Wire types of the REST API (`shared/contract/rest-api.md`), as the UI reads them.
// Not a validator: fields the UI does not use are left out, and every field is read defensively.

/** A session record as `GET /api/sessions` and friends return it. */
export interface SessionRecord {
	piface_id: string;
	working_dir: string;
	status: 'live' | 'closed';
	session_file?: string | null;
	no_session?: boolean;
	use_direnv?: boolean;
	model_provider?: string | null;
	model_id?: string | null;
	thinking_level?: string | null;
	session_name?: string | null;
	render_markdown?: boolean;
	parent_piface_id?: string | null;
	project_dir?: string | null;
	execution_dir?: string | null;
	workspace_mode?: 'shared' | 'git_worktree';
	workspace_theme_override?: string | null;
	workspace_skin_override?: string | null;
	created_at?: string;
	last_active?: string;
	/** Ours: an extension dialog waits for an answer. */
	attention_required?: boolean;
	/** Ours (cluster): the agent (machine) the session runs on; absent while Piface runs one machine. */
	agent?: string | { id?: string; name?: string; hostname?: string } | null;
}

/** One entry of `GET /api/models`: pi's model object, passed through. */
export interface ModelInfo {
	id: string;
	provider: string;
	name?: string;
}

/** Body of `POST /api/sessions` (only non-empty fields are sent). */
export interface CreateSessionBody {
	working_dir: string;
	provider?: string;
	model?: string;
	thinking_level?: string;
	session_name?: string;
	no_session?: boolean;
	use_direnv?: boolean;
	shared: true;
}

/** `GET /api/sessions/{id}/fork-messages` entries. */
export interface ForkMessage {
	entryId: string;
	text: string;
}

/** `GET /api/sessions/{id}/history`. */
export interface HistoryResponse {
	messages: unknown[];
	source?: string;
	error?: string | null;
}

/** `POST /api/sessions/{id}/branch`. */
export interface BranchResponse {
	cancelled: boolean;
	selected_text: string;
	session: SessionRecord | null;
}
