import { describe, expect, it } from 'vitest';
import { appendTranscript, finishRecording, IDLE, isIOS, micButton, NO_SPEECH, pickMimeType, recordingPlan } from './voice';

const ready = { speech: true, checking: false, live: true, connected: true };

describe('micButton', () => {
	it('is disabled with the cluster tooltip when there is no speech worker', () => {
		expect(micButton('text', IDLE, { ...ready, speech: false })).toEqual({ label: 'Mic → Text', disabled: true, title: NO_SPEECH, pressed: false });
		// On a server without a GPU or a cached model the tooltip says how to turn speech on.
		expect(NO_SPEECH).toMatch(/^No speech worker in this cluster\. To turn it on, restart piface \(or an agent\) with --speech/);
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
	it('puts the transcript on a new line after text, as the original, and never adds an empty one', () => {
		expect(appendTranscript('', ' hello ')).toBe('hello');
		expect(appendTranscript('fix this', 'please')).toBe('fix this\nplease');
		expect(appendTranscript('fix this  ', 'please')).toBe('fix this\nplease');
		expect(appendTranscript('line\n', 'next')).toBe('line\nnext');
		expect(appendTranscript('keep', '   ')).toBe('keep');
	});
});

describe('recordingPlan and finishRecording', () => {
	it('uses 250 ms slices and a 140 ms delayed stop on iOS only', () => {
		expect(recordingPlan(true)).toEqual({ timesliceMs: 250, stopDelayMs: 140 });
		expect(recordingPlan(false)).toEqual({ timesliceMs: 1000, stopDelayMs: 0 });
	});

	it('flushes, then stops (later when asked), and leaves an inactive recorder alone', () => {
		const calls: string[] = [];
		const rec = { state: 'recording', requestData: () => calls.push('requestData'), stop: () => calls.push('stop') };
		let later: (() => void) | null = null;
		finishRecording(rec, 140, (fn, ms) => {
			calls.push(`schedule ${ms}`);
			later = fn;
		});
		expect(calls).toEqual(['requestData', 'schedule 140']);
		later!();
		expect(calls).toEqual(['requestData', 'schedule 140', 'stop']);
		const idle = { state: 'inactive', requestData: () => calls.push('x'), stop: () => calls.push('x') };
		finishRecording(idle, 0);
		expect(calls).not.toContain('x');
		const throwing = { state: 'recording', requestData: () => { throw new Error('no data'); }, stop: () => calls.push('stopped anyway') };
		finishRecording(throwing, 0);
		expect(calls).toContain('stopped anyway');
	});
});
