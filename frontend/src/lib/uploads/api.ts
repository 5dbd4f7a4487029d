// `POST /api/sessions/{id}/uploads` for one file, as multipart/form-data (field `files`): no base64 blow-up
// of large files, and XMLHttpRequest rather than fetch because only it reports upload progress.

import { detailOf } from '../api/client';
import { reportUnauthorized } from '../auth/signals';
import { uploadErrorText, type UploadRecord } from './attachments';

export class UploadError extends Error {
	constructor(
		readonly status: number,
		message: string
	) {
		super(message);
		this.name = 'UploadError';
	}
}

export interface UploadOptions {
	onProgress?: (loaded: number, total: number) => void;
	signal?: AbortSignal;
}

/** Uploads `file`; resolves to the server's record of it. Rejects with `UploadError` (or `AbortError`). */
export function uploadFile(sessionId: string, file: File, opts: UploadOptions = {}): Promise<UploadRecord> {
	return new Promise((resolve, reject) => {
		const xhr = new XMLHttpRequest();
		xhr.open('POST', `/api/sessions/${encodeURIComponent(sessionId)}/uploads`);
		xhr.responseType = 'text';
		xhr.upload.onprogress = (e) => opts.onProgress?.(e.loaded, e.lengthComputable ? e.total : file.size);
		xhr.onload = () => {
			let body: unknown = null;
			try {
				body = xhr.responseText ? JSON.parse(xhr.responseText) : null;
			} catch {
				body = null;
			}
			if (xhr.status < 200 || xhr.status >= 300) {
				if (xhr.status === 401) reportUnauthorized();
				reject(new UploadError(xhr.status, uploadErrorText(xhr.status, detailOf(body, xhr.statusText))));
				return;
			}
			const record = (body as { uploads?: UploadRecord[] } | null)?.uploads?.[0];
			if (!record?.upload_id) reject(new UploadError(xhr.status, 'The server did not return an upload id.'));
			else resolve(record);
		};
		xhr.onerror = () => reject(new UploadError(0, uploadErrorText(0, '')));
		xhr.onabort = () => reject(new DOMException('Upload cancelled', 'AbortError'));
		if (opts.signal) {
			if (opts.signal.aborted) return reject(new DOMException('Upload cancelled', 'AbortError'));
			opts.signal.addEventListener('abort', () => xhr.abort(), { once: true });
		}
		const form = new FormData();
		form.append('files', file, file.name || 'file');
		xhr.send(form);
	});
}
