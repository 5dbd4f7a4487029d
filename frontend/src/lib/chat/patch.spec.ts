import { describe, expect, it } from 'vitest';
import { applyPatch, PatchError, type PatchOp, type PathElement } from './patch';

type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

const base = () => ({
	role: 'assistant',
	content: [
		{ type: 'thinking', thinking: 'hmm' },
		{ type: 'text', text: 'Hello' }
	],
	usage: { input: 1, output: 2 },
	stopReason: 'stop'
});

describe('applyPatch', () => {
	it('appends, sets, pushes and deletes, in order', () => {
		const m = { ...base(), errorMessage: 'x' };
		const ops: PatchOp[] = [
			{ path: ['content', 1, 'text'], append: ' world' },
			{ path: ['usage'], set: { input: 3, output: 7 } },
			{ path: ['content', 2], set: { type: 'toolCall', id: 'c1', name: 'bash', arguments: {} } },
			{ path: ['content', 2, 'arguments', 'command'], set: 'l' },
			{ path: ['content', 2, 'arguments', 'command'], append: 's' },
			{ path: ['stopReason'], set: 'toolUse' },
			{ path: ['errorMessage'], delete: true }
		];
		expect(applyPatch(m, ops)).toEqual({
			role: 'assistant',
			content: [
				{ type: 'thinking', thinking: 'hmm' },
				{ type: 'text', text: 'Hello world' },
				{ type: 'toolCall', id: 'c1', name: 'bash', arguments: { command: 'ls' } }
			],
			usage: { input: 3, output: 7 },
			stopReason: 'toolUse'
		});
	});

	it('leaves its input alone and shares what did not change', () => {
		const m = base();
		const before = JSON.stringify(m);
		const out = applyPatch(m, [
			{ path: ['content', 1, 'text'], append: '!' },
			{ path: ['content', 1, 'text'], append: '?' }
		]);
		expect(JSON.stringify(m)).toBe(before);
		expect(out).not.toBe(m);
		expect(out.content).not.toBe(m.content);
		expect(out.content[1]).not.toBe(m.content[1]);
		expect(out.content[1]!.text).toBe('Hello!?');
		// Off the path: the very same objects.
		expect(out.content[0]).toBe(m.content[0]);
		expect(out.usage).toBe(m.usage);
	});

	it('does not change values it was given when a later operation goes into them', () => {
		const part = { type: 'text', text: 'a' };
		const ops: PatchOp[] = [
			{ path: ['content', 2], set: part },
			{ path: ['content', 2, 'text'], append: 'b' }
		];
		const out = applyPatch(base(), ops);
		expect(part.text).toBe('a');
		expect(out.content[2]).toEqual({ type: 'text', text: 'ab' });
		// The same operations give the same answer a second time.
		expect(applyPatch(base(), ops)).toEqual(out);
	});

	it('replaces the whole message with an empty path, and an empty patch changes nothing', () => {
		const m = base();
		expect(applyPatch(m, [{ path: [], set: { role: 'assistant', content: [] } }])).toEqual({ role: 'assistant', content: [] });
		expect(applyPatch(m, [])).toBe(m);
	});

	it('keeps `__proto__` an ordinary key', () => {
		const out = applyPatch({ a: 1 } as Record<string, unknown>, [{ path: ['__proto__'], set: { polluted: true } }]);
		expect(Object.getPrototypeOf(out)).toBe(Object.prototype);
		expect(Object.hasOwn(out, '__proto__')).toBe(true);
		expect(({} as Record<string, unknown>).polluted).toBeUndefined();
	});

	it.each<[string, PatchOp[], RegExp]>([
		['a missing key', [{ path: ['nope', 'x'], append: 'a' }], /no key at \["nope"\]/],
		['an index past the end', [{ path: ['content', 5, 'text'], append: 'a' }], /no array element at \["content",5\]/],
		['an index that is not one', [{ path: ['content', 'x'], set: 1 }], /no array element/],
		['a negative index', [{ path: ['content', -1], set: 1 }], /no array element/],
		['a gap in an array', [{ path: ['content', 3], set: 1 }], /no array element at \["content",3\]/],
		['an index on an object', [{ path: ['usage', 0], set: 1 }], /array index on an object/],
		['descending into a string', [{ path: ['stopReason', 'x'], set: 1 }], /nothing to descend into at \["stopReason"\]/],
		['appending to a number', [{ path: ['usage', 'input'], append: '1' }], /append to a non-string/],
		['appending a number', [{ path: ['stopReason'], append: 1 } as unknown as PatchOp], /append of a non-string/],
		['appending at the end of an array', [{ path: ['content', 2], append: 'x' }], /no array element/],
		['deleting a missing key', [{ path: ['errorMessage'], delete: true }], /delete of a missing key/],
		['deleting an array element', [{ path: ['content', 0], delete: true }], /delete of a non-key/],
		['an operation of no kind', [{ path: ['x'] } as unknown as PatchOp], /without append, set or delete/],
		['an empty path for append', [{ path: [], append: 'x' }], /non-empty path/],
		['no path', [{ set: 1 } as unknown as PatchOp], /bad patch operation/]
	])('throws a PatchError on %s', (_, ops, message) => {
		const m = base();
		const before = JSON.stringify(m);
		expect(() => applyPatch(m, ops)).toThrow(PatchError);
		expect(() => applyPatch(m, ops)).toThrow(message);
		expect(JSON.stringify(m)).toBe(before);
	});

	it('throws when the patch is not a list or the message not an object', () => {
		expect(() => applyPatch(base(), null as unknown as PatchOp[])).toThrow(PatchError);
		expect(() => applyPatch('text', [{ path: ['a'], set: 1 }])).toThrow(/not an object/);
	});
});

// ----- property test: random streams of partial messages -----

/** A small seeded PRNG (mulberry32), so a failure names a reproducible seed. */
function rng(seed: number) {
	let a = seed >>> 0;
	const next = () => {
		a = (a + 0x6d2b79f5) >>> 0;
		let t = a;
		t = Math.imul(t ^ (t >>> 15), t | 1);
		t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
		return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
	};
	return {
		next,
		int: (n: number) => Math.floor(next() * n),
		pick: <T>(xs: readonly T[]): T => xs[Math.floor(next() * xs.length)]!
	};
}

type Rng = ReturnType<typeof rng>;

const PIECES = ['tok ', 'a', ' ', '\n', '```', 'é', '😀', '"quoted"', '\\', '{"x":', ''];

function isObj(v: unknown): v is Record<string, Json> {
	return typeof v === 'object' && v !== null && !Array.isArray(v);
}

/** The operations that turn `a` into `b`, as the server's differ might derive them: appends for grown
 * strings, pushes for new array elements, deletes for removed keys, sets for everything else. */
function diff(a: Json, b: Json, path: PathElement[] = [], out: PatchOp[] = []): PatchOp[] {
	if (typeof a === 'string' && typeof b === 'string') {
		if (a === b) return out;
		if (b.startsWith(a)) out.push({ path, append: b.slice(a.length) });
		else out.push({ path, set: b });
		return out;
	}
	if (Array.isArray(a) && Array.isArray(b) && b.length >= a.length) {
		a.forEach((x, i) => diff(x, b[i]!, [...path, i], out));
		for (let i = a.length; i < b.length; i++) out.push({ path: [...path, i], set: b[i] });
		return out;
	}
	if (isObj(a) && isObj(b)) {
		for (const k of Object.keys(a)) if (!(k in b)) out.push({ path: [...path, k], delete: true });
		for (const k of Object.keys(b)) {
			if (k in a) diff(a[k]!, b[k]!, [...path, k], out);
			else out.push({ path: [...path, k], set: b[k] });
		}
		return out;
	}
	if (JSON.stringify(a) !== JSON.stringify(b)) out.push({ path, set: b });
	return out;
}

/** The next partial: one to three random changes of the kinds pi's partials go through. */
function evolve(m: Record<string, Json>, r: Rng): Record<string, Json> {
	const next = JSON.parse(JSON.stringify(m)) as Record<string, Json>;
	const content = next.content as Record<string, Json>[];
	const changes = 1 + r.int(3);
	for (let c = 0; c < changes; c++) {
		const roll = r.int(20);
		const part = content.length ? content[r.int(content.length)]! : null;
		if (roll < 11 && part) {
			// The common case: a token more in some part.
			if (part.type === 'text') part.text += r.pick(PIECES);
			else if (part.type === 'thinking') part.thinking += r.pick(PIECES);
			else {
				const args = part.arguments as Record<string, Json>;
				const keys = Object.keys(args);
				if (keys.length && r.int(3)) {
					const k = r.pick(keys);
					args[k] = typeof args[k] === 'string' ? args[k] + r.pick(PIECES) : r.pick(PIECES);
				} else args[`k${r.int(5)}`] = r.pick(PIECES);
			}
		} else if (roll < 14) {
			const type = r.pick(['text', 'thinking', 'toolCall']);
			if (type === 'text') content.push({ type, text: r.pick(PIECES) });
			else if (type === 'thinking') content.push({ type, thinking: r.pick(PIECES), thinkingSignature: 'sig' });
			else content.push({ type, id: `call_${r.int(1000)}`, name: r.pick(['bash', 'read']), arguments: {} });
		} else if (roll < 16) {
			const usage = next.usage as Record<string, Json>;
			usage.output = (usage.output as number) + 1 + r.int(3);
			if (r.int(2)) usage.cost = { total: r.next() };
		} else if (roll < 17) {
			next.stopReason = r.pick(['stop', 'toolUse', 'length', 'error']);
		} else if (roll < 18) {
			if ('errorMessage' in next) delete next.errorMessage;
			else next.errorMessage = r.pick(PIECES);
		} else if (roll < 19) {
			if ('responseId' in next) delete next.responseId;
			else next.responseId = `resp_${r.int(100)}`;
		} else if (part && part.type === 'text') {
			// A rewrite rather than a growth (the differ then sets the whole string).
			part.text = r.pick(PIECES);
		}
	}
	return next;
}

describe('applyPatch on random streams', () => {
	it('reproduces every partial of 200 streams from the previous one', () => {
		for (let seed = 1; seed <= 200; seed++) {
			const r = rng(seed);
			let partial: Record<string, Json> = {
				role: 'assistant',
				content: [],
				api: 'openai-completions',
				provider: 'fake',
				model: 'fake-model',
				usage: { input: 10, output: 0 },
				stopReason: 'stop',
				timestamp: 1700000000000 + seed
			};
			let live: Record<string, Json> = partial;
			const steps = 20 + r.int(60);
			for (let step = 0; step < steps; step++) {
				const next = evolve(partial, r);
				const ops = JSON.parse(JSON.stringify(diff(partial, next))) as PatchOp[];
				const frozen = JSON.stringify(live);
				const patched = applyPatch(live, ops);
				if (JSON.stringify(live) !== frozen) throw new Error(`seed ${seed} step ${step}: the base was changed`);
				try {
					expect(patched).toStrictEqual(next);
				} catch (e) {
					throw new Error(`seed ${seed} step ${step}: ${(e as Error).message}`);
				}
				partial = next;
				live = patched;
			}
		}
	});

	it('the differ itself: an identical partial gives no operations, a new root one set', () => {
		expect(diff({ a: 'x' }, { a: 'x' })).toEqual([]);
		expect(diff({ a: 'x' }, [1])).toEqual([{ path: [], set: [1] }]);
		expect(diff({ a: [1, 2] }, { a: [1] })).toEqual([{ path: ['a'], set: [1] }]);
	});
});
