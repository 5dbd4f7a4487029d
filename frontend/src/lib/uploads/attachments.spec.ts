import { describe, expect, it } from 'vitest';
import {
	addFiles,
	afterSend,
	busy,
	carriesFiles,
	echoText,
	emptyTray,
	filesOf,
	markDone,
	markFailed,
	markUploading,
	MAX_FILE_BYTES,
	percent,
	readyIds,
	removeAttachment,
	setProgress,
	toStart,
	uploadErrorText
} from './attachments';

const file = (name: string, size = 10, type = 'text/plain', lastModified = 1) => ({ name, size, type, lastModified });
const record = (id: string, name = 'f') => ({ upload_id: id, file_name: name, mime_type: 'text/plain', size: 10, path: `/s/uploads/_shared/${id}_${name}` });

describe('the attachment tray', () => {
	it('queues files with fresh keys and rejects files over the limit at once', () => {
		const { tray, added } = addFiles(emptyTray(), [file('a.txt'), file('big.bin', MAX_FILE_BYTES + 1), file('', 3)]);
		expect(added.map((a) => [a.key, a.name, a.status])).toEqual([
			[1, 'a.txt', 'queued'],
			[2, 'big.bin', 'error'],
			[3, 'file', 'queued']
		]);
		expect(added[1]!.error).toMatch(/10 MiB/);
		expect(tray.nextKey).toBe(4);
		expect(busy(tray)).toBe(true);
	});

	it('starts at most three uploads at a time, in order', () => {
		let { tray } = addFiles(emptyTray(), ['a', 'b', 'c', 'd', 'e'].map((n) => file(n)));
		expect(toStart(tray).map((a) => a.name)).toEqual(['a', 'b', 'c']);
		tray = markUploading(markUploading(tray, 1), 2);
		expect(toStart(tray).map((a) => a.name)).toEqual(['c']);
		expect(toStart(tray, 2)).toEqual([]);
	});

	it('tracks progress, success and failure', () => {
		let { tray } = addFiles(emptyTray(), [file('a', 200), file('b', 100)]);
		tray = markUploading(tray, 1);
		tray = setProgress(tray, 1, 50);
		expect(percent(tray.items[0]!)).toBe(25);
		tray = setProgress(tray, 1, 9999);
		expect(tray.items[0]!.loaded).toBe(200);
		expect(percent(tray.items[1]!)).toBe(0);
		tray = markDone(tray, 1, record('u1', 'a'));
		expect(tray.items[0]).toMatchObject({ status: 'done', uploadId: 'u1', path: '/s/uploads/_shared/u1_a' });
		expect(percent(tray.items[0]!)).toBe(100);
		expect(busy(tray)).toBe(true);
		tray = markUploading(tray, 2);
		tray = markFailed(tray, 2, 'nope');
		expect(busy(tray)).toBe(false);
		expect(readyIds(tray)).toEqual(['u1']);
		// Progress after a failure does not revive it.
		expect(setProgress(tray, 2, 5).items[1]!.status).toBe('error');
	});

	it('removes chips and clears the sent ones after a send', () => {
		let { tray } = addFiles(emptyTray(), [file('a'), file('b'), file('c')]);
		tray = markDone(markUploading(tray, 1), 1, record('u1'));
		tray = markDone(markUploading(tray, 2), 2, record('u2'));
		tray = markFailed(tray, 3, 'boom');
		expect(removeAttachment(tray, 99)).toBe(tray);
		tray = removeAttachment(tray, 1);
		expect(readyIds(tray)).toEqual(['u2']);
		tray = afterSend(tray);
		expect(tray.items.map((a) => a.name)).toEqual(['c']);
		expect(readyIds(tray)).toEqual([]);
	});
});

describe('texts', () => {
	it('echoes a message without text as the number of files', () => {
		expect(echoText('look at this', 2)).toBe('look at this');
		expect(echoText('  ', 1)).toBe('[attached 1 file]');
		expect(echoText('', 3)).toBe('[attached 3 files]');
		expect(echoText('', 0)).toBe('');
	});

	it('explains upload errors', () => {
		expect(uploadErrorText(409, 'Session file not available yet.')).toMatch(/send a first message/);
		expect(uploadErrorText(413, 'File too large. Max 10485760 bytes.')).toBe('Too large: File too large. Max 10485760 bytes.');
		expect(uploadErrorText(0, '')).toMatch(/could not be reached/);
		expect(uploadErrorText(400, 'Too many files.')).toBe('Too many files.');
		expect(uploadErrorText(500, '')).toBe('Upload failed (500).');
	});
});

describe('transfers', () => {
	it('collects files from items and files without duplicates', () => {
		const a = file('a.png', 5, 'image/png');
		const b = file('b.txt');
		const t = {
			items: [
				{ kind: 'string', getAsFile: () => null },
				{ kind: 'file', getAsFile: () => a }
			],
			files: [a, b]
		};
		expect(filesOf(t)).toEqual([a, b]);
		expect(filesOf({ files: [b] })).toEqual([b]);
		expect(filesOf(null)).toEqual([]);
		// Two different files with the same name are both kept.
		expect(filesOf({ files: [file('x', 1), file('x', 2)] })).toHaveLength(2);
	});

	it('knows whether a drag carries files', () => {
		expect(carriesFiles({ types: ['Files', 'text/uri-list'] })).toBe(true);
		expect(carriesFiles({ types: ['text/plain'] })).toBe(false);
		expect(carriesFiles(null)).toBe(false);
	});
});
