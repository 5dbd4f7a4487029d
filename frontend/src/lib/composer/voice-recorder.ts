// Recording a clip with MediaRecorder and sending it to `POST /api/sessions/{id}/transcribe` (browser only).
// Stopping flushes and waits for the recorder's last chunk, so the end of what was said is never cut off (the
// slices and the stop sequence per platform are `recordingPlan`/`finishRecording` in voice.ts).

import { ApiError, apiFetch, detailOf } from '../api/client';
import { finishRecording, isIOS, pickMimeType, recordingPlan, TRANSCRIBE_MAX_BYTES } from './voice';

export interface Recording {
	/** Stops and resolves to the whole clip. */
	stop(): Promise<Blob>;
	/** Stops and throws the clip away. */
	cancel(): void;
}

export async function startRecording(): Promise<Recording> {
	if (!navigator.mediaDevices?.getUserMedia || typeof MediaRecorder === 'undefined') {
		throw new Error('This browser cannot record audio here (it needs HTTPS or localhost).');
	}
	const stream = await navigator.mediaDevices.getUserMedia({ audio: true });
	const ios = isIOS(navigator.userAgent, navigator.maxTouchPoints);
	const plan = recordingPlan(ios);
	const mimeType = pickMimeType((t) => MediaRecorder.isTypeSupported(t), ios);
	const recorder = new MediaRecorder(stream, mimeType ? { mimeType } : undefined);
	const chunks: Blob[] = [];
	recorder.ondataavailable = (e) => e.data.size && chunks.push(e.data);
	const stopped = new Promise<void>((resolve) => (recorder.onstop = () => resolve()));
	const release = () => stream.getTracks().forEach((t) => t.stop());
	recorder.start(plan.timesliceMs);
	return {
		async stop() {
			finishRecording(recorder, plan.stopDelayMs);
			await stopped;
			release();
			return new Blob(chunks, { type: recorder.mimeType || mimeType || 'audio/webm' });
		},
		cancel() {
			if (recorder.state !== 'inactive') recorder.stop();
			release();
		}
	};
}

function base64(blob: Blob): Promise<string> {
	return new Promise((resolve, reject) => {
		const r = new FileReader();
		r.onload = () => resolve(String(r.result).replace(/^data:[^,]*,/, ''));
		r.onerror = () => reject(r.error ?? new Error('Could not read the recording'));
		r.readAsDataURL(blob);
	});
}

/** Transcribes a clip; `clean` asks pi to tidy the text. Resolves to the text to append. */
export async function transcribe(sessionId: string, clip: Blob, clean: boolean): Promise<string> {
	if (clip.size === 0) throw new Error('Nothing was recorded.');
	if (clip.size > TRANSCRIBE_MAX_BYTES) throw new Error('The recording is too long (over 25 MiB).');
	const res = await apiFetch(`/api/sessions/${encodeURIComponent(sessionId)}/transcribe`, {
		method: 'POST',
		headers: { 'content-type': 'application/json' },
		body: JSON.stringify({ audio_base64: await base64(clip), mime_type: clip.type.split(';')[0] || 'audio/webm', clean_with_pi: clean })
	});
	const body = await res.json().catch(() => null);
	if (!res.ok) throw new ApiError(res.status, detailOf(body, `${res.status} ${res.statusText}`));
	return typeof body?.text === 'string' ? body.text : '';
}
