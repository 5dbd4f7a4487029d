// Hands a value that changes many times per frame to a consumer at most once per animation frame: the live
// bubble's Markdown is rendered from the whole partial text, so rendering it on every streamed token would cost
// O(N²) for an N-token answer; once per frame bounds it by time instead. The latest value wins; values in
// between are never seen.
//
// Not here: what the value is (the chat feed passes the live partial message). The scheduler is injectable
// so the specs run without a browser.

export interface Scheduler {
	request(run: () => void): number;
	cancel(handle: number): void;
}

const animationFrames: Scheduler = {
	request: (run) => requestAnimationFrame(run),
	cancel: (handle) => cancelAnimationFrame(handle)
};

export interface FrameThrottle<T> {
	/** Delivers `value` on the next frame (with anything pushed before it in this frame dropped). */
	push(value: T): void;
	/** Delivers `value` now, dropping a pending one (e.g. the end of a stream, which must not lag). */
	now(value: T): void;
	/** Drops a pending value (the consumer goes away). */
	cancel(): void;
}

export function frameThrottle<T>(deliver: (value: T) => void, scheduler: Scheduler = animationFrames): FrameThrottle<T> {
	let pending: { value: T } | null = null;
	let handle: number | null = null;

	const cancel = () => {
		if (handle !== null) scheduler.cancel(handle);
		handle = null;
		pending = null;
	};

	return {
		push(value) {
			pending = { value };
			if (handle !== null) return;
			handle = scheduler.request(() => {
				handle = null;
				const p = pending;
				pending = null;
				if (p) deliver(p.value);
			});
		},
		now(value) {
			cancel();
			deliver(value);
		},
		cancel
	};
}
