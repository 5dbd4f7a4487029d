import { describe, expect, it } from 'vitest';
import type { UploadRecord } from './attachments';
import type { UploadOptions } from './api';
import { AttachmentTray } from './tray.svelte';

interface Call {
	file: File;
	opts: UploadOptions;
	resolve: (r: UploadRecord) => void;
	reject: (e: Error) => void;
}

function fakeUpload() {
	const calls: Call[] = [];
	const fn = (_id: string, file: File, opts: UploadOptions) =>
		new Promise<UploadRecord>((resolve, reject) => {
			calls.push({ file, opts, resolve, reject });
		});
	return { calls, fn };
}

const f = (name: string, size = 4) => new File(['x'.repeat(size)], name, { type: 'text/plain' });
const rec = (id: string, name: string): UploadRecord => ({ upload_id: id, file_name: name, mime_type: 'text/plain', size: 4, path: `/u/${id}_${name}` });
const tick = () => new Promise((r) => setTimeout(r, 0));

describe('AttachmentTray', () => {
	it('uploads three at a time and starts the next one when one finishes', async () => {
		const up = fakeUpload();
		const tray = new AttachmentTray('s1', up.fn);
		tray.add(['a', 'b', 'c', 'd'].map((n) => f(n)));
		expect(up.calls.map((c) => c.file.name)).toEqual(['a', 'b', 'c']);
		expect(tray.busy).toBe(true);
		up.calls[0]!.opts.onProgress?.(2, 4);
		expect(tray.items[0]!.loaded).toBe(2);
		up.calls[0]!.resolve(rec('u1', 'a'));
		await tick();
		expect(up.calls.map((c) => c.file.name)).toEqual(['a', 'b', 'c', 'd']);
		expect(tray.ids).toEqual(['u1']);
		up.calls[1]!.reject(new Error('Too large: x'));
		up.calls[2]!.resolve(rec('u3', 'c'));
		up.calls[3]!.resolve(rec('u4', 'd'));
		await tick();
		expect(tray.busy).toBe(false);
		expect(tray.ids).toEqual(['u1', 'u3', 'u4']);
		expect(tray.items[1]).toMatchObject({ status: 'error', error: 'Too large: x' });
		tray.sent();
		expect(tray.items.map((a) => a.name)).toEqual(['b']);
	});

	it('cancels the upload of a removed chip and forgets its result', async () => {
		const up = fakeUpload();
		const tray = new AttachmentTray('s1', up.fn);
		tray.add([f('a')]);
		const call = up.calls[0]!;
		tray.remove(tray.items[0]!.key);
		expect(call.opts.signal?.aborted).toBe(true);
		call.reject(new DOMException('Upload cancelled', 'AbortError'));
		await tick();
		expect(tray.items).toEqual([]);
		expect(tray.busy).toBe(false);
	});

	it('never uploads a file over the limit', () => {
		const up = fakeUpload();
		const tray = new AttachmentTray('s1', up.fn);
		const big = f('big');
		Object.defineProperty(big, 'size', { value: 11 * 1024 * 1024 });
		tray.add([big]);
		expect(up.calls).toEqual([]);
		expect(tray.items[0]!.status).toBe('error');
	});
});
