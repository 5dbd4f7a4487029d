// Voice input of the composer (ui.md "Composer", "Voice"): the two Mic buttons' labels and states, the
// recording format to ask the browser for, and how a transcript joins the draft. Pure; the recorder and
// the transcribe request are in voice-recorder.ts.

export type VoiceMode = 'text' | 'clean';

export type VoicePhase = { kind: 'idle' } | { kind: 'recording'; mode: VoiceMode } | { kind: 'transcribing'; mode: VoiceMode };

export const IDLE: VoicePhase = { kind: 'idle' };

/** The server's limit on a clip (rest-api.md §7): 25 MiB. */
export const TRANSCRIBE_MAX_BYTES = 25 * 1024 * 1024;

/** Why the Mic buttons are off, and how to turn them on (README "Speech": an agent serves speech when it has a
 * GPU or the model is cached; `--speech` makes it fetch the model and serve it on the CPU). */
export const NO_SPEECH =
	'No speech worker in this cluster. To turn it on, restart piface (or an agent) with --speech: it downloads the model and runs it, on the CPU if there is no GPU.';

export interface MicContext {
	/** The cluster has a speech worker (from `/api/health`). */
	speech: boolean;
	/** Still asking the server. */
	checking: boolean;
	live: boolean;
	connected: boolean;
}

export interface MicButton {
	label: string;
	disabled: boolean;
	title: string;
	pressed: boolean;
}

const NAMES: Record<VoiceMode, string> = { text: 'Mic → Text', clean: 'Mic → Clean' };
const HELP: Record<VoiceMode, string> = {
	text: 'Record and append the transcript to the message',
	clean: 'Record, let pi tidy the transcript, and append it to the message'
};

/** The state of one Mic button. */
export function micButton(mode: VoiceMode, phase: VoicePhase, ctx: MicContext): MicButton {
	const base = { label: NAMES[mode], pressed: false };
	if (ctx.checking) return { ...base, disabled: true, title: 'Checking for a speech worker…' };
	if (!ctx.speech) return { ...base, disabled: true, title: NO_SPEECH };
	if (!ctx.live || !ctx.connected) return { ...base, disabled: true, title: 'Voice input needs a live, connected session' };
	if (phase.kind === 'transcribing') return { ...base, disabled: true, title: 'Transcribing…' };
	if (phase.kind === 'recording') {
		if (phase.mode === mode) return { label: `Stop ${NAMES[mode]}`, disabled: false, title: 'Stop recording and transcribe', pressed: true };
		return { ...base, disabled: true, title: 'Another recording is running' };
	}
	return { ...base, disabled: false, title: HELP[mode] };
}

/** Whether the page runs on iOS/iPadOS (iPadOS reports itself as a Mac with touch). */
export function isIOS(ua: string, maxTouchPoints = 0): boolean {
	return /iPad|iPhone|iPod/.test(ua) || (/Macintosh/.test(ua) && maxTouchPoints > 1);
}

/** The recording type to ask for: MP4 first on iOS (Safari's only reliable one), else Opus in WebM/Ogg. '' = browser default. */
export function pickMimeType(isSupported: (type: string) => boolean, ios: boolean): string {
	const order = ios
		? ['audio/mp4', 'audio/webm;codecs=opus', 'audio/webm']
		: ['audio/webm;codecs=opus', 'audio/webm', 'audio/ogg;codecs=opus', 'audio/mp4'];
	return order.find((t) => isSupported(t)) ?? '';
}

/** The draft with a transcript appended on a line of its own (ui.md "Voice", as the original): a new line after
 * existing text (none added when the draft already ends with one), nothing before an empty draft. */
export function appendTranscript(draft: string, transcript: string): string {
	const t = transcript.trim();
	if (!t) return draft;
	if (!draft.trim()) return t;
	return /\n[ \t]*$/.test(draft) ? draft.replace(/[ \t]+$/, '') + t : `${draft.replace(/\s+$/, '')}\n${t}`;
}

/** How a clip is recorded and stopped. iOS Safari can hand over an empty clip when the recorder is stopped
 * straight away, or when it records in long slices: there, record in 250 ms slices and, on stop, ask for the
 * pending data first and stop 140 ms later (the original's fix). Elsewhere 1 s slices and an immediate stop. */
export interface RecordingPlan {
	timesliceMs: number;
	stopDelayMs: number;
}

export function recordingPlan(ios: boolean): RecordingPlan {
	return ios ? { timesliceMs: 250, stopDelayMs: 140 } : { timesliceMs: 1000, stopDelayMs: 0 };
}

/** The part of MediaRecorder the stop sequence uses. */
export interface StoppableRecorder {
	readonly state: string;
	requestData?: () => void;
	stop(): void;
}

/** Ends a recording: flush the pending data (`requestData`), then stop, after `delayMs` when asked.
 * `schedule` is setTimeout (injectable for specs). Nothing happens to a recorder that is already inactive. */
export function finishRecording(
	recorder: StoppableRecorder,
	delayMs: number,
	schedule: (fn: () => void, ms: number) => unknown = setTimeout
): void {
	if (recorder.state === 'inactive') return;
	try {
		recorder.requestData?.();
	} catch {
		// Some browsers throw when no data is pending: stopping still delivers what there is.
	}
	const stop = () => {
		if (recorder.state !== 'inactive') recorder.stop();
	};
	if (delayMs > 0) schedule(stop, delayMs);
	else stop();
}
