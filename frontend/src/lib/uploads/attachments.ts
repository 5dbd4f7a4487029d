// The composer's attachments as a pure state machine: files picked, dropped or pasted become chips that
// upload at once (queued → uploading with progress → done with an upload id, or error), can be removed
// before sending, and give the `piface_upload_ids` of the next message. Also the helpers that read files
// out of drag-and-drop and clipboard transfers. No browser objects are needed: a file is anything with a
// name, a size and a type.

/** The server's per-file limit (rest-api.md §3): 10 MiB decoded. */
export const MAX_FILE_BYTES = 10 * 1024 * 1024;
/** Uploads running at once. */
export const UPLOAD_CONCURRENCY = 3;

export type AttachmentStatus = 'queued' | 'uploading' | 'done' | 'error';

export interface Attachment {
	key: number;
	name: string;
	size: number;
	type: string;
	status: AttachmentStatus;
	/** Bytes sent so far (uploading). */
	loaded: number;
	uploadId?: string;
	/** Absolute path on the server (the chip's tooltip). */
	path?: string;
	error?: string;
}

export interface Tray {
	items: Attachment[];
	nextKey: number;
}

/** One entry of the endpoint's answer. */
export interface UploadRecord {
	upload_id: string;
	file_name: string;
	mime_type: string;
	size: number;
	path: string;
}

export interface FileLike {
	name: string;
	size: number;
	type: string;
	lastModified?: number;
}

export function emptyTray(): Tray {
	return { items: [], nextKey: 1 };
}

/** Adds files as queued chips (files over the limit become error chips at once). */
export function addFiles(tray: Tray, files: readonly FileLike[]): { tray: Tray; added: Attachment[] } {
	let key = tray.nextKey;
	const added = files.map((f): Attachment => {
		const a: Attachment = { key: key++, name: f.name || 'file', size: f.size, type: f.type, status: 'queued', loaded: 0 };
		if (f.size > MAX_FILE_BYTES) return { ...a, status: 'error', error: `Too large: the limit is ${MAX_FILE_BYTES / 1024 / 1024} MiB per file.` };
		return a;
	});
	return { tray: { items: [...tray.items, ...added], nextKey: key }, added };
}

function update(tray: Tray, key: number, f: (a: Attachment) => Attachment): Tray {
	let changed = false;
	const items = tray.items.map((a) => {
		if (a.key !== key) return a;
		changed = true;
		return f(a);
	});
	return changed ? { ...tray, items } : tray;
}

export function markUploading(tray: Tray, key: number): Tray {
	return update(tray, key, (a) => ({ ...a, status: 'uploading', loaded: 0, error: undefined }));
}

export function setProgress(tray: Tray, key: number, loaded: number): Tray {
	return update(tray, key, (a) => (a.status === 'uploading' ? { ...a, loaded: Math.min(Math.max(0, loaded), a.size) } : a));
}

export function markDone(tray: Tray, key: number, r: UploadRecord): Tray {
	return update(tray, key, (a) => ({ ...a, status: 'done', loaded: a.size, uploadId: r.upload_id, path: r.path, name: r.file_name || a.name }));
}

export function markFailed(tray: Tray, key: number, error: string): Tray {
	return update(tray, key, (a) => ({ ...a, status: 'error', error }));
}

export function removeAttachment(tray: Tray, key: number): Tray {
	const items = tray.items.filter((a) => a.key !== key);
	return items.length === tray.items.length ? tray : { ...tray, items };
}

/** Queued attachments to start now, given how many are already uploading. */
export function toStart(tray: Tray, concurrency = UPLOAD_CONCURRENCY): Attachment[] {
	const running = tray.items.filter((a) => a.status === 'uploading').length;
	return tray.items.filter((a) => a.status === 'queued').slice(0, Math.max(0, concurrency - running));
}

/** The upload ids to send with the next message, in the order the files were added. */
export function readyIds(tray: Tray): string[] {
	return tray.items.filter((a) => a.status === 'done' && a.uploadId).map((a) => a.uploadId!);
}

/** Whether some upload has not finished yet (sending waits for it). */
export function busy(tray: Tray): boolean {
	return tray.items.some((a) => a.status === 'queued' || a.status === 'uploading');
}

/** The tray after a send: the sent chips go; failed ones stay so the reader sees why. */
export function afterSend(tray: Tray): Tray {
	return { ...tray, items: tray.items.filter((a) => a.status === 'error') };
}

/** Progress of a chip, 0–100. */
export function percent(a: Attachment): number {
	if (a.status === 'done') return 100;
	if (a.status !== 'uploading' || a.size <= 0) return 0;
	return Math.floor((a.loaded / a.size) * 100);
}

/** The local echo of a message sent with attachments: its text, or `[attached N file(s)]` when it has none. */
export function echoText(text: string, attached: number): string {
	if (text.trim() || attached === 0) return text;
	return `[attached ${attached} file${attached === 1 ? '' : 's'}]`;
}

/** A sentence for a failed upload. */
export function uploadErrorText(status: number, detail: string): string {
	if (status === 409) return 'Attachments need the session file: send a first message, then attach.';
	if (status === 413) return `Too large: ${detail}`;
	if (status === 0) return 'Upload failed: the server could not be reached.';
	return detail || `Upload failed (${status}).`;
}

/** What a drag or paste carries: `files` and/or `items` (kind `file` ones give a File). */
export interface TransferLike<F> {
	files?: ArrayLike<F> | null;
	items?: ArrayLike<{ kind: string; getAsFile(): F | null }> | null;
	types?: readonly string[];
}

/** Whether a drag carries files (for the drop target's highlight; the files themselves are hidden until drop). */
export function carriesFiles(t: { types?: readonly string[] | null } | null | undefined): boolean {
	return !!t?.types && Array.from(t.types).includes('Files');
}

/** The files of a transfer, without duplicates (some browsers list a pasted file both in items and files). */
export function filesOf<F extends FileLike>(t: TransferLike<F> | null | undefined): F[] {
	if (!t) return [];
	const found: F[] = [];
	for (const item of Array.from(t.items ?? [])) {
		if (item.kind !== 'file') continue;
		const f = item.getAsFile();
		if (f) found.push(f);
	}
	for (const f of Array.from(t.files ?? [])) found.push(f);
	const seen = new Set<string>();
	return found.filter((f) => {
		const id = `${f.name}\0${f.size}\0${f.type}\0${f.lastModified ?? ''}`;
		if (seen.has(id)) return false;
		seen.add(id);
		return true;
	});
}
