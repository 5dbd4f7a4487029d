import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { startRecording } from './voice-recorder';

/** A MediaRecorder that behaves like iOS Safari's: data recorded since the last slice is only handed over by
 * `requestData()` or at the next slice boundary, and `stop()` alone drops it (the "empty recording" bug). */
class FakeRecorder {
	static log: string[] = [];
	static isTypeSupported: (t: string) => boolean = (t) => t === 'audio/mp4';
	state: 'inactive' | 'recording' = 'inactive';
	mimeType: string;
	ondataavailable: ((e: { data: Blob }) => void) | null = null;
	onstop: (() => void) | null = null;

	constructor(_stream: unknown, opts?: { mimeType?: string }) {
		this.mimeType = opts?.mimeType ?? '';
	}

	start(slice?: number) {
		this.state = 'recording';
		FakeRecorder.log.push(`start ${slice}`);
	}

	requestData() {
		FakeRecorder.log.push(`requestData @${Date.now()}`);
		// The flush arrives asynchronously, as in a browser.
		setTimeout(() => this.ondataavailable?.({ data: new Blob(['voice'], { type: this.mimeType }) }), 10);
	}

	stop() {
		FakeRecorder.log.push(`stop @${Date.now()}`);
		this.state = 'inactive';
		setTimeout(() => this.onstop?.(), 0);
	}
}

function stubBrowser(userAgent: string) {
	const track = { stop: vi.fn() };
	vi.stubGlobal('navigator', {
		userAgent,
		maxTouchPoints: 5,
		mediaDevices: { getUserMedia: async () => ({ getTracks: () => [track] }) }
	});
	vi.stubGlobal('MediaRecorder', FakeRecorder);
	return track;
}

describe('startRecording: the stop sequence', () => {
	beforeEach(() => {
		vi.useFakeTimers({ now: 0 });
		FakeRecorder.log = [];
	});
	afterEach(() => {
		vi.useRealTimers();
		vi.unstubAllGlobals();
	});

	it('on iPhone records in 250 ms slices, flushes on stop and stops 140 ms later, so the clip is not empty', async () => {
		const track = stubBrowser('Mozilla/5.0 (iPhone; CPU iPhone OS 17_4 like Mac OS X) AppleWebKit/605.1.15 Safari/604.1');
		const rec = await startRecording();
		vi.setSystemTime(1000);
		const clip = rec.stop();
		await vi.advanceTimersByTimeAsync(200);
		const blob = await clip;
		expect(FakeRecorder.log).toEqual(['start 250', 'requestData @1000', 'stop @1140']);
		expect(blob.size).toBeGreaterThan(0);
		expect(blob.type).toBe('audio/mp4');
		expect(track.stop).toHaveBeenCalled();
	});

	it('elsewhere flushes and stops at once', async () => {
		FakeRecorder.isTypeSupported = () => true;
		stubBrowser('Mozilla/5.0 (X11; Linux x86_64) Chrome/140.0');
		const rec = await startRecording();
		vi.setSystemTime(500);
		const clip = rec.stop();
		await vi.advanceTimersByTimeAsync(50);
		await clip;
		expect(FakeRecorder.log).toEqual(['start 1000', 'requestData @500', 'stop @500']);
	});
});
