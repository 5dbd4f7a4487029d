import { describe, expect, it } from 'vitest';
import { listenButton, NO_TTS, TTS_MAX_CHARS, ttsText } from './tts';

const ok = { tts: true, checking: false, generating: false };

describe('Listen', () => {
	it('is disabled with the cluster tooltip without a TTS worker', () => {
		expect(listenButton('hello', { ...ok, tts: false })).toEqual({ disabled: true, title: NO_TTS });
		expect(NO_TTS).toMatch(/^No text-to-speech worker in this cluster\. To turn it on, restart piface \(or an agent\) with --tts/);
		expect(listenButton('hello', { ...ok, tts: false, checking: true }).disabled).toBe(true);
	});

	it('reads non-empty text within the limit, one request at a time', () => {
		expect(listenButton('hello', ok)).toEqual({ disabled: false, title: 'Read this answer aloud' });
		expect(listenButton('  \r\n ', ok).disabled).toBe(true);
		expect(listenButton('x'.repeat(TTS_MAX_CHARS + 1), ok).title).toMatch(/12,000/);
		expect(listenButton('hello', { ...ok, generating: true })).toEqual({ disabled: true, title: 'Generating audio…' });
	});

	it('normalises like the server', () => {
		expect(ttsText(' a\r\nb \n')).toBe('a\nb');
	});
});
