import { describe, expect, it } from 'vitest';
import { frameThrottle, type Scheduler } from './frame-throttle';

/** A scheduler whose frames run when the spec says so. */
function frames() {
	let next = 1;
	const queue = new Map<number, () => void>();
	const scheduler: Scheduler = {
		request(run) {
			queue.set(next, run);
			return next++;
		},
		cancel(handle) {
			queue.delete(handle);
		}
	};
	const tick = () => {
		const runs = [...queue.values()];
		queue.clear();
		for (const r of runs) r();
	};
	return { scheduler, tick, pending: () => queue.size };
}

describe('frameThrottle', () => {
	it('delivers only the latest value of a frame, once', () => {
		const f = frames();
		const seen: number[] = [];
		const t = frameThrottle<number>((v) => seen.push(v), f.scheduler);
		for (let i = 1; i <= 1000; i++) t.push(i);
		expect(seen).toEqual([]);
		expect(f.pending()).toBe(1);
		f.tick();
		expect(seen).toEqual([1000]);
		f.tick();
		expect(seen).toEqual([1000]);
		t.push(1001);
		t.push(1002);
		f.tick();
		expect(seen).toEqual([1000, 1002]);
	});

	it('delivers at once with now(), dropping what was pending', () => {
		const f = frames();
		const seen: (string | null)[] = [];
		const t = frameThrottle<string | null>((v) => seen.push(v), f.scheduler);
		t.push('partial');
		t.now(null);
		expect(seen).toEqual([null]);
		expect(f.pending()).toBe(0);
		f.tick();
		expect(seen).toEqual([null]);
	});

	it('cancel() drops a pending value', () => {
		const f = frames();
		const seen: number[] = [];
		const t = frameThrottle<number>((v) => seen.push(v), f.scheduler);
		t.push(1);
		t.cancel();
		f.tick();
		expect(seen).toEqual([]);
		t.push(2);
		f.tick();
		expect(seen).toEqual([2]);
	});
});
