// Listen (text-to-speech) on assistant messages (ui.md "TTS playback"): the button's state and the request.
// The mini-player's rules are in tts-playback.ts.

import { ApiError, apiFetch, detailOf } from '../api/client';

/** The server's limit (rest-api.md §8), after normalisation. */
export const TTS_MAX_CHARS = 12_000;
/** Why Listen is off, and how to turn it on (README "Text-to-speech", decided as for speech-to-text). */
export const NO_TTS =
	'No text-to-speech worker in this cluster. To turn it on, restart piface (or an agent) with --tts: it downloads the voice and runs it, on the CPU if there is no GPU.';

/** What the server reads: CRLF → LF, trimmed. */
export function ttsText(text: string): string {
	return text.replace(/\r\n/g, '\n').trim();
}

export interface ListenContext {
	tts: boolean;
	checking: boolean;
	/** Some Listen request is pending (only one at a time). */
	generating: boolean;
}

/** The Listen button's state for a message text. */
export function listenButton(text: string, ctx: ListenContext): { disabled: boolean; title: string } {
	if (ctx.checking) return { disabled: true, title: 'Checking for a text-to-speech worker…' };
	if (!ctx.tts) return { disabled: true, title: NO_TTS };
	const t = ttsText(text);
	if (!t) return { disabled: true, title: 'Nothing to read' };
	if (t.length > TTS_MAX_CHARS) return { disabled: true, title: `Too long to read aloud (over ${TTS_MAX_CHARS.toLocaleString('en')} characters)` };
	if (ctx.generating) return { disabled: true, title: 'Generating audio…' };
	return { disabled: false, title: 'Read this answer aloud' };
}

/** `POST /api/sessions/{id}/tts` → the audio URL. */
export async function requestSpeech(sessionId: string, text: string): Promise<string> {
	const res = await apiFetch(`/api/sessions/${encodeURIComponent(sessionId)}/tts`, {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ text: ttsText(text) })
	});
	const body = await res.json().catch(() => null);
	if (!res.ok) throw new ApiError(res.status, detailOf(body, `${res.status} ${res.statusText}`));
	if (typeof body?.audio_url !== 'string') throw new Error('The server returned no audio.');
	return body.audio_url;
}

/** The audio itself, as a Blob: the player plays it from an object URL, which is seekable whether or not the
 * server answers range requests (a media element cannot seek in a response it cannot ask ranges of). */
export async function fetchAudio(url: string): Promise<Blob> {
	const res = await apiFetch(url);
	if (!res.ok) {
		const body = await res.json().catch(() => null);
		throw new ApiError(res.status, detailOf(body, `The audio could not be downloaded (${res.status} ${res.statusText}).`));
	}
	return res.blob();
}
