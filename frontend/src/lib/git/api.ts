// The git endpoints of the Diff tab (`GET /api/sessions/{id}/git/status`, `/git/diff`), run by the server in
// the session's execution dir.

import { withQuery } from '../api/client';
import { getJson } from '../session/http';
import type { GitDiff, GitStatus } from './status';

export function gitStatus(sessionId: string, signal?: AbortSignal): Promise<GitStatus> {
	return getJson<GitStatus>(`/api/sessions/${encodeURIComponent(sessionId)}/git/status`, signal);
}

export function gitDiff(sessionId: string, path: string | null, staged: boolean, signal?: AbortSignal): Promise<GitDiff> {
	return getJson<GitDiff>(withQuery(`/api/sessions/${encodeURIComponent(sessionId)}/git/diff`, { path, staged: String(staged) }), signal);
}
