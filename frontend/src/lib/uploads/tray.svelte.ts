// The attachments of one session's composer: the pure tray (attachments.ts) as `$state`, plus the uploads it
// starts (a few at a time) and cancels when a chip is removed. The upload function is injected for specs.

import {
	addFiles,
	afterSend,
	busy,
	emptyTray,
	markDone,
	markFailed,
	markUploading,
	readyIds,
	removeAttachment,
	setProgress,
	toStart,
	type Attachment,
	type Tray,
	type UploadRecord
} from './attachments';
import { uploadFile, type UploadOptions } from './api';

export type UploadFn = (sessionId: string, file: File, opts: UploadOptions) => Promise<UploadRecord>;

export class AttachmentTray {
	tray = $state.raw<Tray>(emptyTray());
	#files = new Map<number, File>();
	#aborts = new Map<number, AbortController>();

	constructor(
		readonly sessionId: string,
		private readonly upload: UploadFn = uploadFile
	) {}

	get items(): Attachment[] {
		return this.tray.items;
	}

	get ids(): string[] {
		return readyIds(this.tray);
	}

	get busy(): boolean {
		return busy(this.tray);
	}

	add(files: readonly File[]): void {
		if (!files.length) return;
		const { tray, added } = addFiles(this.tray, files);
		this.tray = tray;
		added.forEach((a, i) => a.status === 'queued' && this.#files.set(a.key, files[i]!));
		this.#pump();
	}

	remove(key: number): void {
		this.#aborts.get(key)?.abort();
		this.#aborts.delete(key);
		this.#files.delete(key);
		this.tray = removeAttachment(this.tray, key);
		this.#pump();
	}

	/** After the message went out: the sent chips go. */
	sent(): void {
		this.tray = afterSend(this.tray);
	}

	/** Leaving the page: cancel what is still uploading. */
	dispose(): void {
		for (const c of this.#aborts.values()) c.abort();
		this.#aborts.clear();
		this.#files.clear();
	}

	#pump(): void {
		for (const a of toStart(this.tray)) {
			const file = this.#files.get(a.key);
			if (!file) continue;
			const abort = new AbortController();
			this.#aborts.set(a.key, abort);
			this.tray = markUploading(this.tray, a.key);
			this.upload(this.sessionId, file, {
				signal: abort.signal,
				onProgress: (loaded) => (this.tray = setProgress(this.tray, a.key, loaded))
			}).then(
				(record) => this.#finish(a.key, (t) => markDone(t, a.key, record)),
				(err: unknown) => {
					if (abort.signal.aborted) return;
					this.#finish(a.key, (t) => markFailed(t, a.key, err instanceof Error ? err.message : String(err)));
				}
			);
		}
	}

	#finish(key: number, f: (t: Tray) => Tray): void {
		this.#aborts.delete(key);
		this.#files.delete(key);
		this.tray = f(this.tray);
		this.#pump();
	}
}
