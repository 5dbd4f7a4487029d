// A trailing-edge debounce with explicit `flush` and `cancel`, for the draft, scratch and snapshot writers
// (the page flushes them on tab hide and page hide so nothing typed is lost).

export interface Debounced<A extends unknown[]> {
	(...args: A): void;
	flush(): void;
	cancel(): void;
	pending(): boolean;
}

export function debounce<A extends unknown[]>(fn: (...args: A) => void, ms: number): Debounced<A> {
	let timer: ReturnType<typeof setTimeout> | null = null;
	let last: A | null = null;
	const run = () => {
		timer = null;
		const args = last;
		last = null;
		if (args) fn(...args);
	};
	const d = ((...args: A) => {
		last = args;
		if (timer) clearTimeout(timer);
		timer = setTimeout(run, ms);
	}) as Debounced<A>;
	d.flush = () => {
		if (timer) clearTimeout(timer);
		if (last) run();
		timer = null;
	};
	d.cancel = () => {
		if (timer) clearTimeout(timer);
		timer = null;
		last = null;
	};
	d.pending = () => last !== null;
	return d;
}
