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
	/** Ours (cluster): the name of the agent (machine) the session runs on; `local` in `piface serve`.
	 * Absent from records of older servers. The server sends a string; the object form is read leniently
	 * for code written before the cluster's records settled. */
	agent?: string | { id?: string; name?: string; hostname?: string } | null;
}

/** A GPU an agent found (NVML, numbered as CUDA numbers them under `CUDA_VISIBLE_DEVICES`). */
export interface GpuInfo {
	index: number;
	name: string;
	uuid?: string;
	memory_mib?: number;
	compute_capability?: string | null;
}

/** `removed` only travels on the dashboard socket, for an agent that was just removed. */
export type AgentStatus = 'up' | 'down' | 'removed';

/** One agent (machine) of the cluster, as `GET /api/agents` and the dashboard socket describe it. */
export interface AgentInfo {
	name: string;
	status: AgentStatus;
	/** When it last connected or was last heard from (ISO-8601). */
	last_seen?: string | null;
	hostname?: string | null;
	os?: string | null;
	software_version?: string | null;
	pi_version?: string | null;
	gpus?: GpuInfo[];
	live_sessions?: number;
	/** The agent's speech-to-text service; `null` (or absent, from older servers) when it runs none. */
	speech?: ModelService | null;
	/** The agent's text-to-speech service, likewise. */
	tts?: ModelService | null;
}

/** Where a model service stands: fetching its weights, loading them, serving, or given up. */
export type ModelServiceState = 'downloading' | 'loading' | 'ready' | 'failed';

/** One model service of an agent (`speech`, `tts` in `AgentInfo`). */
export interface ModelService {
	/** E.g. `nvidia/parakeet-tdt-0.6b-v3`. */
	model: string;
	/** `cuda:0 (NVIDIA GeForce GTX 1080 Ti)` or `cpu`. */
	device: string;
	/** Requests in progress. */
	busy: number;
	/** Requests answered. */
	done: number;
	state: ModelServiceState;
	/** While downloading: the file being fetched and its progress (`total_bytes` 0 when unknown). */
	file?: string;
	done_bytes?: number;
	total_bytes?: number;
	bytes_per_s?: number;
	eta_s?: number | null;
	/** When failed: why. */
	error?: string;
}

/** `GET /api/health`. `speech` and `tts` are ours; older servers leave them out (= not available). */
export interface HealthResponse {
	status: string;
	speech?: boolean;
	tts?: boolean;
}

/** `.piface/workspace.toml` as JSON (behaviour.md §7.1, TOML key names). Only the parts the UI edits are
 * typed; everything else is carried through untouched. */
export interface WorkspaceConfig {
	version?: number;
	env?: { use_direnv?: boolean; [k: string]: unknown } | null;
	launch?: WorkspaceLaunch | null;
	ui?: { theme_override?: string | null; skin_override?: string | null; [k: string]: unknown } | null;
	[k: string]: unknown;
}

/** The `[launch]` table: a script run before pi and/or the terminal on every session start. */
export interface WorkspaceLaunch {
	script?: string | null;
	shell?: string | null;
	timeout_seconds?: number | null;
	apply_to?: string[] | null;
	[k: string]: unknown;
}

/** An entry of `GET /api/fs/list`. */
export interface DirEntry {
	name: string;
	path: string;
	is_dir: boolean;
}

/** `GET /api/workspace/config`. */
export interface WorkspaceConfigResponse {
	project_dir: string;
	has_config_file: boolean;
	config: WorkspaceConfig;
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
	/** Ours (cluster): where to run; absent = the server's default agent. */
	agent?: string;
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
