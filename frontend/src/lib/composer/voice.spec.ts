import { describe, expect, it } from 'vitest';
import { appendTranscript, IDLE, isIOS, micButton, NO_SPEECH, pickMimeType } from './voice';

const ready = { speech: true, checking: false, live: true, connected: true };

describe('micButton', () => {
	it('is disabled with the cluster tooltip when there is no speech worker', () => {
		expect(micButton('text', IDLE, { ...ready, speech: false })).toEqual({ label: 'Mic → Text', disabled: true, title: NO_SPEECH, pressed: false });
		expect(NO_SPEECH).toBe('No speech worker in this cluster');
		expect(micButton('clean', IDLE, { ...ready, checking: true, speech: false }).disabled).toBe(true);
	});

	it('needs a live, connected session', () => {
		expect(micButton('text', IDLE, { ...ready, connected: false }).disabled).toBe(true);
		expect(micButton('text', IDLE, { ...ready, live: false }).disabled).toBe(true);
		expect(micButton('text', IDLE, ready).disabled).toBe(false);
	});

	it('relabels the recording button and disables the other; both off while transcribing', () => {
		const rec = { kind: 'recording', mode: 'clean' } as const;
		expect(micButton('clean', rec, ready)).toMatchObject({ label: 'Stop Mic → Clean', disabled: false, pressed: true });
		expect(micButton('text', rec, ready)).toMatchObject({ label: 'Mic → Text', disabled: true });
		const tr = { kind: 'transcribing', mode: 'text' } as const;
		expect(micButton('text', tr, ready).disabled).toBe(true);
		expect(micButton('clean', tr, ready).disabled).toBe(true);
	});
});

describe('recording format', () => {
	it('prefers MP4 on iOS and Opus elsewhere', () => {
		const all = () => true;
		expect(pickMimeType(all, true)).toBe('audio/mp4');
		expect(pickMimeType(all, false)).toBe('audio/webm;codecs=opus');
		expect(pickMimeType((t) => t === 'audio/ogg;codecs=opus', false)).toBe('audio/ogg;codecs=opus');
		expect(pickMimeType(() => false, false)).toBe('');
	});

	it('detects iOS and iPadOS', () => {
		expect(isIOS('Mozilla/5.0 (iPhone; CPU iPhone OS 17_0 like Mac OS X)')).toBe(true);
		expect(isIOS('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)', 5)).toBe(true);
		expect(isIOS('Mozilla/5.0 (Macintosh; Intel Mac OS X 10_15_7)', 0)).toBe(false);
		expect(isIOS('Mozilla/5.0 (X11; Linux x86_64)')).toBe(false);
	});
});

describe('appendTranscript', () => {
	it('joins with one space and never adds an empty transcript', () => {
		expect(appendTranscript('', ' hello ')).toBe('hello');
		expect(appendTranscript('fix this', 'please')).toBe('fix this please');
		expect(appendTranscript('line\n', 'next')).toBe('line\nnext');
		expect(appendTranscript('keep', '   ')).toBe('keep');
	});
});
