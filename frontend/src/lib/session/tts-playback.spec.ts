import { describe, expect, it } from 'vitest';
import {
	clampSeek,
	formatTime,
	INITIAL_PLAYER,
	listenView,
	mediaErrorText,
	playerEvent,
	playLabel,
	progressPercent,
	progressText,
	rewindLabel,
	rewindStep,
	rewindTarget,
	timeLabel,
	type MediaEvent,
	type PlayerState
} from './tts-playback';

describe('time formatting', () => {
	it.each([
		[0, '0:00'],
		[0.99, '0:00'],
		[5, '0:05'],
		[59.9, '0:59'],
		[60, '1:00'],
		[125.4, '2:05'],
		[3665, '61:05'],
		[-3, '0:00'],
		[NaN, '0:00'],
		[Infinity, '0:00']
	])('%s s is %s', (s, text) => {
		expect(formatTime(s)).toBe(text);
	});

	it('labels elapsed and total time, and says it as words for the progress bar', () => {
		expect(timeLabel(7.2, 90)).toBe('0:07 / 1:30');
		expect(timeLabel(0, null)).toBe('0:00 / -:--');
		expect(timeLabel(3, Infinity)).toBe('0:03 / -:--');
		expect(progressText(7, 90)).toBe('0:07 of 1:30');
		expect(progressText(7, null)).toBe('0:07');
	});
});

describe('seeking', () => {
	it('clamps to the audio', () => {
		expect(clampSeek(12, 30)).toBe(12);
		expect(clampSeek(-5, 30)).toBe(0);
		expect(clampSeek(31, 30)).toBe(30);
		expect(clampSeek(NaN, 30)).toBe(0);
		expect(clampSeek(Infinity, 30)).toBe(30);
	});

	it('only keeps it non-negative while the duration is unknown', () => {
		expect(clampSeek(100, null)).toBe(100);
		expect(clampSeek(-1, null)).toBe(0);
		expect(clampSeek(Infinity, NaN)).toBe(0);
	});
});

describe('progress', () => {
	it('is a percentage of the duration, within 0–100', () => {
		expect(progressPercent(0, 40)).toBe(0);
		expect(progressPercent(10, 40)).toBe(25);
		expect(progressPercent(40, 40)).toBe(100);
		expect(progressPercent(50, 40)).toBe(100);
		expect(progressPercent(-1, 40)).toBe(0);
	});

	it('is 0 while the duration is unknown', () => {
		expect(progressPercent(10, null)).toBe(0);
		expect(progressPercent(10, 0)).toBe(0);
		expect(progressPercent(10, Infinity)).toBe(0);
	});
});

describe('rewind size', () => {
	it.each<[number | null, 10 | 15 | null, string | null]>([
		[null, null, null],
		[5, null, null],
		[19.9, null, null],
		[20, 10, '-10s'],
		[45, 10, '-10s'],
		[89.9, 10, '-10s'],
		[90, 15, '-15s'],
		[600, 15, '-15s'],
		[Infinity, null, null]
	])('a %s s answer rewinds by %s', (duration, step, label) => {
		expect(rewindStep(duration)).toBe(step);
		expect(rewindLabel(duration)).toBe(label);
	});

	it('jumps back by the step, never before the start', () => {
		expect(rewindTarget(30, 60)).toBe(20);
		expect(rewindTarget(4, 60)).toBe(0);
		expect(rewindTarget(100, 120)).toBe(85);
		expect(rewindTarget(8, 10)).toBe(8); // no rewind button under 20 s: no jump
	});
});

describe('player state and labels', () => {
	const run = (events: MediaEvent[], s: PlayerState = INITIAL_PLAYER) => events.reduce(playerEvent, s);

	it('loads, plays, pauses and ends', () => {
		let s = run([{ type: 'duration', duration: 42 }]);
		expect(s).toEqual({ status: 'ready', current: 0, duration: 42, error: null });
		expect(playLabel(s.status)).toBe('Play');
		s = run([{ type: 'play' }, { type: 'time', current: 3.5 }], s);
		expect(s.status).toBe('playing');
		expect(s.current).toBe(3.5);
		expect(playLabel(s.status)).toBe('Pause');
		s = playerEvent(s, { type: 'pause' });
		expect(s.status).toBe('paused');
		expect(playLabel(s.status)).toBe('Play');
		// The element says `pause` then `ended` at the end.
		s = run([{ type: 'play' }, { type: 'time', current: 41.9 }, { type: 'pause' }, { type: 'ended' }], s);
		expect(s.status).toBe('ended');
		expect(s.current).toBe(42);
		expect(playLabel(s.status)).toBe('Play');
		expect(progressPercent(s.current, s.duration)).toBe(100);
	});

	it('a seek back from the end (Restart) leaves the ended state', () => {
		const ended = run([{ type: 'duration', duration: 30 }, { type: 'play' }, { type: 'ended' }]);
		expect(playerEvent(ended, { type: 'time', current: 0 }).status).toBe('paused');
		expect(playerEvent(ended, { type: 'time', current: 30 }).status).toBe('ended');
		expect(playerEvent(ended, { type: 'play' }).status).toBe('playing');
	});

	it('keeps times within the duration and ignores a duration it cannot use', () => {
		let s = run([{ type: 'duration', duration: 10 }, { type: 'time', current: 12 }]);
		expect(s.current).toBe(10);
		s = run([{ type: 'duration', duration: Infinity }]);
		expect(s.duration).toBeNull();
		expect(s.status).toBe('ready');
	});

	it('shows an error, which a later play clears', () => {
		let s = run([{ type: 'error', message: mediaErrorText(4) }]);
		expect(s.status).toBe('error');
		expect(s.error).toBe('This audio format is not supported by the browser.');
		s = playerEvent(s, { type: 'play' });
		expect(s.error).toBeNull();
		expect(mediaErrorText(undefined)).toBe('The audio could not be played.');
		expect(mediaErrorText(2)).toMatch(/downloaded/);
	});
});

describe('inline player visibility', () => {
	it('shows the Listen button until there is audio, then the player instead', () => {
		expect(listenView({ pending: false, audioUrl: null, error: null })).toEqual({ button: true, buttonLabel: 'Listen', player: false, error: false });
		expect(listenView({ pending: true, audioUrl: null, error: null })).toEqual({ button: true, buttonLabel: 'Generating audio…', player: false, error: false });
		expect(listenView({ pending: false, audioUrl: '/a.mp3', error: null })).toEqual({ button: false, buttonLabel: 'Listen', player: true, error: false });
	});

	it('shows the error panel with the button (to try again) when the request failed', () => {
		expect(listenView({ pending: false, audioUrl: null, error: 'boom' })).toEqual({ button: true, buttonLabel: 'Listen', player: false, error: true });
		// A retry in flight hides the old error.
		expect(listenView({ pending: true, audioUrl: null, error: 'boom' }).error).toBe(false);
	});
});
