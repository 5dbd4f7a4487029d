// Thin `fetch` wrappers for the REST API. Errors become `ApiError` with the server's `detail` text;
// nothing here retries except `getSessionWithRetry` (the just-created/branched race of the contract).
// Every request goes through `apiFetch`, the one place that tells the login gate about a 401
// (auth/signals.ts); the upload request (XMLHttpRequest, for progress) does the same itself.

import type {
	AgentInfo,
	BranchResponse,
	CreateSessionBody,
	DirEntry,
	ForkMessage,
	HealthResponse,
	HistoryResponse,
	ModelInfo,
	SessionRecord,
	WorkspaceConfig,
	WorkspaceConfigResponse
} from './types';
import { reportUnauthorized } from '../auth/signals';
import type { WorkspaceTrustInfo } from '../trust/trust';
import type { PushSubscriptionInfo } from '../push/notification';

/** An HTTP error with the server's human-readable `detail`. */
export class ApiError extends Error {
	constructor(
		readonly status: number,
		readonly detail: string
	) {
		super(detail);
		this.name = 'ApiError';
	}
}

/** Extracts a readable message from a `{"detail": …}` body (string or FastAPI's list form). */
export function detailOf(body: unknown, fallback: string): string {
	if (body && typeof body === 'object' && 'detail' in body) {
		const d = (body as { detail: unknown }).detail;
		if (typeof d === 'string') return d;
		if (Array.isArray(d)) {
			return d.map((x) => (x && typeof x === 'object' && 'msg' in x ? String(x.msg) : String(x))).join('; ');
		}
	}
	return fallback;
}

/** `fetch` for the API: a 401 answer (no or no longer valid login) shows the login page. */
export async function apiFetch(input: string, init?: RequestInit): Promise<Response> {
	const res = await fetch(input, init);
	if (res.status === 401) reportUnauthorized();
	return res;
}

/** One JSON request: a non-2xx answer becomes `ApiError(status, detail)`. */
export async function request<T>(method: string, path: string, body?: unknown, signal?: AbortSignal): Promise<T> {
	const init: RequestInit = { method, headers: {}, signal };
	if (body !== undefined) {
		init.body = JSON.stringify(body);
		(init.headers as Record<string, string>)['content-type'] = 'application/json';
	}
	const res = await apiFetch(path, init);
	const text = await res.text();
	let json: unknown = null;
	try {
		json = text ? JSON.parse(text) : null;
	} catch {
		json = null;
	}
	if (!res.ok) throw new ApiError(res.status, detailOf(json, `${res.status} ${res.statusText}`));
	return json as T;
}

const enc = encodeURIComponent;

/** `path` with the query parameters that have a value (`undefined`, `null` and `''` are left out). */
export function withQuery(path: string, params: Record<string, string | null | undefined>): string {
	const q = new URLSearchParams();
	for (const [k, v] of Object.entries(params)) if (v !== undefined && v !== null && v !== '') q.set(k, v);
	const s = q.toString();
	return s ? `${path}?${s}` : path;
}

/** Keeps the strings of a JSON value that should be a list of strings. */
function strings(v: unknown): string[] {
	return Array.isArray(v) ? v.filter((x): x is string => typeof x === 'string') : [];
}

export const api = {
	health: () => request<HealthResponse>('GET', '/api/health'),
	agents: async () => (await request<{ agents?: AgentInfo[] }>('GET', '/api/agents')).agents ?? [],
	models: async () => (await request<{ models: ModelInfo[] }>('GET', '/api/models')).models ?? [],
	sessions: async () => (await request<{ sessions: SessionRecord[] }>('GET', '/api/sessions')).sessions ?? [],
	session: (id: string) => request<SessionRecord>('GET', `/api/sessions/${enc(id)}`),
	create: (body: CreateSessionBody) => request<SessionRecord>('POST', '/api/sessions', body),
	patch: (id: string, body: { render_markdown: boolean }) =>
		request<SessionRecord>('PATCH', `/api/sessions/${enc(id)}`, body),
	kill: (id: string) => request<SessionRecord>('POST', `/api/sessions/${enc(id)}/kill`),
	resume: (id: string) => request<SessionRecord>('POST', `/api/sessions/${enc(id)}/resume`),
	history: (id: string) => request<HistoryResponse>('GET', `/api/sessions/${enc(id)}/history`),
	forkMessages: async (id: string) =>
		(await request<{ messages: ForkMessage[] }>('GET', `/api/sessions/${enc(id)}/fork-messages`)).messages ?? [],
	branch: (id: string, entry_id: string, session_name: string | null) =>
		request<BranchResponse>('POST', `/api/sessions/${enc(id)}/branch`, { entry_id, session_name }),
	/** Ours: `agent` limits the removal to that machine's records (the same path elsewhere is another directory). */
	removeDirectory: (path: string, agent?: string | null) =>
		request<{ success: boolean }>('POST', '/api/directories/remove', agent ? { path, agent } : { path }),
	direnvAllow: (working_dir: string, agent?: string | null) =>
		request<{ success: boolean }>('POST', '/api/direnv/allow', { working_dir, ...(agent ? { agent } : {}) }),
	/** Directories completing `prefix` on `agent` (absent: the default agent); never throws for a missing
	 * directory (the server answers an empty list). */
	completeDir: async (prefix: string, agent?: string | null, signal?: AbortSignal) =>
		strings((await request<{ matches?: unknown }>('GET', withQuery('/api/fs/complete', { prefix, agent }), undefined, signal))?.matches),
	/** A directory's entries on `agent` (`GET /api/fs/list`). */
	listDir: async (path: string, agent?: string | null, signal?: AbortSignal) =>
		(await request<{ entries?: DirEntry[] }>('GET', withQuery('/api/fs/list', { path, agent }), undefined, signal))?.entries ?? [],
	workspaceConfig: (path: string, agent?: string | null) =>
		request<WorkspaceConfigResponse>('GET', withQuery('/api/workspace/config', { path, agent })),
	/** What the project's workspace file would run and whether its content is trusted (trust/trust.ts). */
	workspaceTrust: (path: string, agent?: string | null) =>
		request<WorkspaceTrustInfo>('GET', withQuery('/api/workspace/trust', { path, agent })),
	/** Trusts exactly the content whose hash was shown (409 when the file changed since). */
	trustWorkspace: (path: string, sha256: string, agent?: string | null) =>
		request<WorkspaceTrustInfo>('POST', '/api/workspace/trust', { path, sha256, ...(agent ? { agent } : {}) }),
	/** Web Push: the coordinator's VAPID public key (base64url). */
	pushKey: async () => (await request<{ public_key: string }>('GET', '/api/push/key')).public_key,
	/** Registers (or renews) this browser's push subscription; its mutes are kept. */
	pushSubscribe: (body: { endpoint: string; keys: { p256dh: string; auth: string } }) =>
		request<PushSubscriptionInfo>('POST', '/api/push/subscriptions', body),
	/** Mutes all (`muted`) or some sessions (`sessions`: id → muted). */
	pushChange: (id: string, body: { muted?: boolean; sessions?: Record<string, boolean> }) =>
		request<PushSubscriptionInfo>('PATCH', `/api/push/subscriptions/${enc(id)}`, body),
	pushRemove: async (id: string) => {
		await request<null>('DELETE', `/api/push/subscriptions/${enc(id)}`);
	},
	/** A test notification now; the push service's status. */
	pushTest: async (id: string) => (await request<{ status: number }>('POST', `/api/push/subscriptions/${enc(id)}/test`)).status,
	saveWorkspaceConfig: (path: string, config: WorkspaceConfig, agent?: string | null) =>
		request<{ success: boolean; project_dir: string; config: WorkspaceConfig }>('PUT', '/api/workspace/config', {
			path,
			config,
			...(agent ? { agent } : {})
		})
};

/** The contract's blocked-`.envrc` detection: the detail mentions direnv, .envrc and blocked. */
export function isDirenvBlocked(err: unknown): err is ApiError {
	if (!(err instanceof ApiError)) return false;
	const d = err.detail.toLowerCase();
	return d.includes('direnv') && d.includes('.envrc') && d.includes('blocked');
}

/** Runs `op`; on a blocked-`.envrc` error asks `confirmAllow`, allows `dir` (on `agent`, the machine that
 * holds it; absent: the default agent) and retries once. */
export async function withDirenvRetry<T>(
	dir: string,
	op: () => Promise<T>,
	confirmAllow: (detail: string) => Promise<boolean>,
	agent?: string | null
): Promise<T> {
	try {
		return await op();
	} catch (err) {
		if (!isDirenvBlocked(err) || !(await confirmAllow(err.detail))) throw err;
		await api.direnvAllow(dir, agent);
		return op();
	}
}

/** Resumes a session; "already live" counts as success (contract). */
export async function resumeSession(record: SessionRecord, confirmAllow: (d: string) => Promise<boolean>) {
	try {
		const agent = typeof record.agent === 'string' ? record.agent : (record.agent?.name ?? null);
		return await withDirenvRetry(record.execution_dir ?? record.working_dir, () => api.resume(record.piface_id), confirmAllow, agent);
	} catch (err) {
		if (err instanceof ApiError && err.status === 409 && /already live/i.test(err.detail)) {
			return api.session(record.piface_id);
		}
		throw err;
	}
}

/** `GET /api/sessions/{id}`, retried up to 5 times 120 ms apart on 404 or network errors. */
export async function getSessionWithRetry(id: string, attempts = 5, delayMs = 120): Promise<SessionRecord> {
	let last: unknown;
	for (let i = 0; i < attempts; i++) {
		try {
			return await api.session(id);
		} catch (err) {
			last = err;
			if (err instanceof ApiError && err.status !== 404) throw err;
			await new Promise((r) => setTimeout(r, delayMs));
		}
	}
	throw last;
}
