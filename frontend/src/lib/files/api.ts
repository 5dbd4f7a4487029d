// The file endpoints of the Files tab (`GET /api/fs/list`, `/api/fs/file`, `/api/fs/raw`). Every call names
// the session's agent, since the files live on the machine that runs the session's pi.

import { withQuery } from '../api/client';
import { getJson } from '../session/http';

/** One child of a directory. */
export interface FsEntry {
	name: string;
	path: string;
	is_dir: boolean;
}

export type PreviewKind = 'image' | 'markdown' | 'html' | 'code' | 'binary';

/** `GET /api/fs/file`: what the preview needs. `content` is set for code and Markdown only. */
export interface FilePreview {
	path: string;
	name: string;
	size: number;
	mime_type: string;
	kind: PreviewKind;
	content: string | null;
	raw_url: string | null;
}

export async function listDir(path: string, agent: string | undefined, signal?: AbortSignal): Promise<FsEntry[]> {
	const body = await getJson<{ entries?: FsEntry[] }>(withQuery('/api/fs/list', { path, agent }), signal);
	return Array.isArray(body?.entries) ? body.entries : [];
}

export function readFile(path: string, agent: string | undefined, signal?: AbortSignal): Promise<FilePreview> {
	return getJson<FilePreview>(withQuery('/api/fs/file', { path, agent }), signal);
}

/**
 * The URL of a file's bytes. Built here rather than taken from `raw_url`, so that every raw link (previews,
 * Markdown images and links) carries the agent the same way.
 */
export function rawUrl(path: string, agent: string | undefined): string {
	return withQuery('/api/fs/raw', { path, agent });
}
