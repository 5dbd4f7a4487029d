// Workspace trust (README "Workspace trust"): a project's committed `.piface/workspace.toml` may carry
// commands (`[bootstrap]`, `[launch]`, each with its `shell`) that the agent runs only once its user has
// trusted that file's exact content (its SHA-256). Here: the API's shapes, which refusals are about trust,
// and the review-trust-retry loop around an action (creating a session). The dialog is
// TrustDialogHost.svelte (asked through trust-prompt.svelte.ts); the terminal asks from its close code
// (terminal/protocol.ts).
//
// Not here: deciding what runs (the agent does, and refuses on its own whatever the UI does).

import { ApiError } from '../api/client';

/** One command of a workspace file, as `GET /api/workspace/trust` lists it. */
export interface WorkspaceCommand {
	/** `bootstrap` or `launch`. */
	section: string;
	shell: string;
	script: string;
	/** `[launch]` only: `pi`, `pty`. */
	apply_to?: string[];
	timeout_seconds?: number;
	/** When it runs, in words. */
	runs: string;
}

/** `GET /api/workspace/trust` (and the answer of `POST`). */
export interface WorkspaceTrustInfo {
	project_dir: string;
	config_path: string;
	has_config_file: boolean;
	/** SHA-256 of the file's bytes; null without a file. */
	sha256: string | null;
	commands: WorkspaceCommand[];
	/** The file has commands that wait for trust. */
	needs_trust: boolean;
	/** This content (`sha256`) is trusted. */
	trusted: boolean;
	/** What was trusted before, when anything was (differs from `sha256` after a change). */
	trusted_sha256: string | null;
}

/** Whether the user must be asked before the file's commands may run. */
export function mustAsk(info: WorkspaceTrustInfo): boolean {
	return info.needs_trust && !info.trusted && !!info.sha256;
}

/** Whether the file changed since an earlier version was trusted. */
export function changedSinceTrusted(info: WorkspaceTrustInfo): boolean {
	return info.trusted_sha256 !== null && info.trusted_sha256 !== info.sha256;
}

/** The server's refusal of an action for an untrusted workspace file (409, `Workspace not trusted…`). */
export function isTrustRefusal(err: unknown): err is ApiError {
	return err instanceof ApiError && err.status === 409 && /^Workspace not trusted/.test(err.detail);
}

/** What the loop needs from the outside: the API and the question to the user. */
export interface TrustDeps {
	info(path: string, agent?: string | null): Promise<WorkspaceTrustInfo>;
	trust(path: string, sha256: string, agent?: string | null): Promise<WorkspaceTrustInfo>;
	confirm(info: WorkspaceTrustInfo): Promise<boolean>;
}

/** How many times a file that changes while the dialog is open is shown again before giving up. */
const ROUNDS = 3;

/** Shows `dir`'s workspace commands (on `agent`) and trusts exactly what was shown when the user agrees.
 * True when the file is trusted afterwards, or needs no trust; false when the user declined. A file that
 * changed while the dialog was open (the server answers 409) is shown again. */
export async function reviewAndTrust(dir: string, agent: string | null | undefined, deps: TrustDeps): Promise<boolean> {
	for (let round = 0; round < ROUNDS; round++) {
		const info = await deps.info(dir, agent);
		if (!mustAsk(info)) return true;
		if (!(await deps.confirm(info))) return false;
		try {
			await deps.trust(info.project_dir, info.sha256!, agent);
			return true;
		} catch (err) {
			if (err instanceof ApiError && err.status === 409) continue;
			throw err;
		}
	}
	return false;
}

/** Runs `op`; when the server refuses it for an untrusted workspace file in `dir`, asks the user, trusts
 * the file and runs `op` once more. Any other error, or a declined dialog, is the original error. */
export async function withWorkspaceTrust<T>(
	dir: string,
	op: () => Promise<T>,
	deps: TrustDeps,
	agent?: string | null
): Promise<T> {
	try {
		return await op();
	} catch (err) {
		if (!isTrustRefusal(err)) throw err;
		if (!(await reviewAndTrust(dir, agent, deps))) throw err;
		return op();
	}
}
