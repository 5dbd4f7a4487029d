// Wire types of the REST API (`shared/contract/rest-api.md`), as the UI reads them.
// Not a validator: every field is read defensively. Fields the UI does not use are left out, except in the
// records that also travel on the sockets (`SessionRecord`, `AgentInfo`, `GpuInfo`): those are typed whole,
// with their key lists in the server's order, which api/fixtures.spec.ts checks against the golden fixtures.

/** A session record as `GET /api/sessions`, both sockets' frames and friends return it; its fields in the
 * server's order (`SESSION_RECORD_KEYS`). The UI reads only some of them; the rest are typed so the fixture
 * spec can pin every field the server sends. */
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
	/** The entry of the parent's session file that a branch started from. Not read by the UI. */
	branch_entry_id?: string | null;
	project_dir?: string | null;
	/** `working_dir` relative to `project_dir` (`.` when they are the same). Not read by the UI. */
	project_subdir?: string;
	execution_dir?: string | null;
	workspace_mode?: 'shared' | 'git_worktree';
	/** The worktree's id, name, parent folder, branch and the ref it was made from (`git_worktree` mode).
	 * Not read by the UI. */
	workspace_id?: string | null;
	workspace_name?: string | null;
	workspace_root?: string | null;
	workspace_branch?: string | null;
	workspace_base_ref?: string | null;
	workspace_theme_override?: string | null;
	workspace_skin_override?: string | null;
	/** Piface made the worktree (and may remove it). Not read by the UI. */
	workspace_created_by_piface?: boolean;
	/** `ready` once the workspace is set up; with `workspace_error` and the two log paths, the server's record
	 * of a bootstrap or launch script. Not read by the UI. */
	workspace_status?: string;
	workspace_error?: string | null;
	bootstrap_log_path?: string | null;
	launch_log_path?: string | null;
	created_at?: string;
	last_active?: string;
	/** Ours (cluster): the name of the agent (machine) the session runs on; `local` in `piface serve`.
	 * Absent from records of older servers. The server sends a string; the object form is read leniently
	 * for code written before the cluster's records settled. */
	agent?: string | { id?: string; name?: string; hostname?: string } | null;
	/** Ours: an extension dialog waits for an answer. */
	attention_required?: boolean;
}

/** `SessionRecord`'s keys in the order the server writes them (fixtures/browser/, api/fixtures.spec.ts). */
export const SESSION_RECORD_KEYS = [
	'piface_id',
	'working_dir',
	'status',
	'session_file',
	'no_session',
	'use_direnv',
	'model_provider',
	'model_id',
	'thinking_level',
	'session_name',
	'render_markdown',
	'parent_piface_id',
	'branch_entry_id',
	'project_dir',
	'project_subdir',
	'execution_dir',
	'workspace_mode',
	'workspace_id',
	'workspace_name',
	'workspace_root',
	'workspace_branch',
	'workspace_base_ref',
	'workspace_theme_override',
	'workspace_skin_override',
	'workspace_created_by_piface',
	'workspace_status',
	'workspace_error',
	'bootstrap_log_path',
	'launch_log_path',
	'created_at',
	'last_active',
	'agent',
	'attention_required'
] as const satisfies readonly (keyof SessionRecord)[];

/** A GPU an agent found (NVML, numbered as CUDA numbers them under `CUDA_VISIBLE_DEVICES`). */
export interface GpuInfo {
	index: number;
	name: string;
	uuid?: string;
	memory_mib?: number;
	/** Free memory when the agent last looked. Not shown by the UI. */
	memory_free_mib?: number;
	compute_capability?: string | null;
	/** E.g. `00000000:65:00.0`, what CUDA orders devices by. Not shown by the UI. */
	pci_bus_id?: string;
}

/** `GpuInfo`'s keys in the order the server writes them. */
export const GPU_INFO_KEYS = [
	'index',
	'name',
	'uuid',
	'memory_mib',
	'memory_free_mib',
	'compute_capability',
	'pci_bus_id'
] as const satisfies readonly (keyof GpuInfo)[];

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
	/** The agent's speech-to-text service; `null` (or absent, from older servers) when it runs none. */
	speech?: ModelService | null;
	/** The agent's text-to-speech service, likewise. */
	tts?: ModelService | null;
	/** Live sessions on it: counted in REST answers and the dashboard's snapshot, but 0 in `piface_agent`
	 * updates, so the UI ignores it and counts the records (dashboard-state.ts `liveByAgent`). */
	live_sessions?: number;
}

/** `AgentInfo`'s keys in the order the server writes them. */
export const AGENT_INFO_KEYS = [
	'name',
	'status',
	'last_seen',
	'hostname',
	'os',
	'software_version',
	'pi_version',
	'gpus',
	'speech',
	'tts',
	'live_sessions'
] as const satisfies readonly (keyof AgentInfo)[];

/** `true` when `K` lists every key of `T`, otherwise the keys it leaves out: `Assert<ListsAllKeys<…>>` then
 * fails to compile, naming them. With `satisfies readonly (keyof T)[]` on the list, this makes a key list and
 * its type agree both ways. */
export type ListsAllKeys<T, K extends readonly PropertyKey[]> = [Exclude<keyof T, K[number]>] extends [never]
	? true
	: { unlisted: Exclude<keyof T, K[number]> };

/** Compiles only when `T` is `true` (see `ListsAllKeys`). */
export type Assert<T extends true> = T;

// The key lists name every field of their types (a field added to a type must be placed in its list).
export type KeyListsComplete = [
	Assert<ListsAllKeys<SessionRecord, typeof SESSION_RECORD_KEYS>>,
	Assert<ListsAllKeys<GpuInfo, typeof GPU_INFO_KEYS>>,
	Assert<ListsAllKeys<AgentInfo, typeof AGENT_INFO_KEYS>>
];

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
