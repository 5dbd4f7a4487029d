// The Listen mini-player's logic (ui.md "TTS playback"), as pure functions: what the message shows (the Listen
// button, the player, the error panel), the player's state as the hidden `<audio>` element reports it, its
// labels, `m:ss` times, the progress, seeking and the rewind button's size.
//
// Not here: the request (tts.ts), the page-wide "one request, one player at a time" state
// (tts-state.svelte.ts) and the markup (TtsPlayer.svelte, ListenButton.svelte).

/** Durations from which the rewind button shows, and from which it jumps further. */
export const REWIND_FROM_S = 20;
export const LONG_FROM_S = 90;

/** What one message's Listen area shows. */
export interface ListenView {
	/** The Listen button (absent while the player is shown). */
	button: boolean;
	buttonLabel: 'Listen' | 'Generating audio…';
	player: boolean;
	error: boolean;
}

/** `pending`: this message's request is running; `audioUrl`: its audio, once there; `error`: why it failed. */
export function listenView(s: { pending: boolean; audioUrl: string | null; error: string | null }): ListenView {
	const player = s.audioUrl !== null && !s.pending;
	return {
		button: !player,
		buttonLabel: s.pending ? 'Generating audio…' : 'Listen',
		player,
		error: s.error !== null && !s.pending
	};
}

/** A time in seconds as `m:ss` (minutes unbounded: `61:05`); anything unknown or negative is `0:00`. */
export function formatTime(seconds: number): string {
	const t = Number.isFinite(seconds) && seconds > 0 ? Math.floor(seconds) : 0;
	return `${Math.floor(t / 60)}:${String(t % 60).padStart(2, '0')}`;
}

/** A duration the player can use: finite and positive, else null (not known yet, or a stream). */
export function knownDuration(duration: number | null | undefined): number | null {
	return typeof duration === 'number' && Number.isFinite(duration) && duration > 0 ? duration : null;
}

/** Where a seek to `t` lands: within [0, duration] (only ≥ 0 while the duration is unknown). */
export function clampSeek(t: number, duration: number | null): number {
	const d = knownDuration(duration);
	if (Number.isNaN(t) || t <= 0) return 0;
	if (d === null) return Number.isFinite(t) ? t : 0;
	return Math.min(t, d);
}

/** How far along playback is, 0–100 (0 while the duration is unknown). */
export function progressPercent(current: number, duration: number | null): number {
	const d = knownDuration(duration);
	if (d === null) return 0;
	return (clampSeek(current, d) / d) * 100;
}

/** The rewind step in seconds: none under 20 s, 10 s up to 90 s, 15 s from 90 s. */
export function rewindStep(duration: number | null): 10 | 15 | null {
	const d = knownDuration(duration);
	if (d === null || d < REWIND_FROM_S) return null;
	return d < LONG_FROM_S ? 10 : 15;
}

/** The rewind button's text (`-10s`, `-15s`), or null when it is hidden. */
export function rewindLabel(duration: number | null): string | null {
	const step = rewindStep(duration);
	return step === null ? null : `-${step}s`;
}

/** Where the rewind button seeks to from `current`. */
export function rewindTarget(current: number, duration: number | null): number {
	return clampSeek(current - (rewindStep(duration) ?? 0), duration);
}

// ----- the player's state, from the audio element's events -----

export type PlayerStatus = 'loading' | 'ready' | 'playing' | 'paused' | 'ended' | 'error';

export interface PlayerState {
	status: PlayerStatus;
	/** Seconds played. */
	current: number;
	/** Seconds in all, null until known. */
	duration: number | null;
	error: string | null;
}

export const INITIAL_PLAYER: PlayerState = Object.freeze({ status: 'loading', current: 0, duration: null, error: null });

/** What the audio element reported. */
export type MediaEvent =
	| { type: 'duration'; duration: number }
	| { type: 'time'; current: number }
	| { type: 'play' }
	| { type: 'pause' }
	| { type: 'ended' }
	| { type: 'error'; message: string };

export function playerEvent(s: PlayerState, ev: MediaEvent): PlayerState {
	switch (ev.type) {
		case 'duration': {
			const duration = knownDuration(ev.duration);
			return { ...s, duration, status: s.status === 'loading' ? 'ready' : s.status };
		}
		case 'time': {
			const current = clampSeek(ev.current, s.duration);
			// A seek back from the end (Restart, the bar, rewind) leaves the ended state.
			const status = s.status === 'ended' && s.duration !== null && current < s.duration ? 'paused' : s.status;
			return { ...s, current, status };
		}
		case 'play':
			return { ...s, status: 'playing', error: null };
		case 'pause':
			// At the end the element reports `pause`, then `ended`; nothing later undoes `ended` but a seek or play.
			return s.status === 'ended' ? s : { ...s, status: 'paused' };
		case 'ended':
			return { ...s, status: 'ended', current: s.duration ?? s.current };
		case 'error':
			return { ...s, status: 'error', error: ev.message };
	}
}

/** The play button's label: Pause while playing, Play otherwise (from the start again once ended). */
export function playLabel(status: PlayerStatus): 'Play' | 'Pause' {
	return status === 'playing' ? 'Pause' : 'Play';
}

/** Elapsed and total time, `0:07 / 1:30` (`-:--` for a duration not known yet). */
export function timeLabel(current: number, duration: number | null): string {
	const d = knownDuration(duration);
	return `${formatTime(current)} / ${d === null ? '-:--' : formatTime(d)}`;
}

/** The progress bar's spoken value: `0:07 of 1:30`. */
export function progressText(current: number, duration: number | null): string {
	const d = knownDuration(duration);
	return d === null ? formatTime(current) : `${formatTime(current)} of ${formatTime(d)}`;
}

/** Why the audio element failed, from its `MediaError` code, in words. */
export function mediaErrorText(code: number | undefined): string {
	switch (code) {
		case 1:
			return 'Playback was aborted.';
		case 2:
			return 'The audio could not be downloaded.';
		case 3:
			return 'The audio could not be decoded.';
		case 4:
			return 'This audio format is not supported by the browser.';
		default:
			return 'The audio could not be played.';
	}
}
