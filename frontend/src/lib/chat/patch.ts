// The compact streaming mode's patches (`/ws/sessions/{id}?mode=compact`): a compact `message_update` carries
// `piface_patch`, a list of operations that turn the previous live partial message into the new one. This
// module applies them; the reducer decides when (chat/reducer.ts).
//
// `applyPatch` never mutates its input and never deep-clones: it copies only the objects and arrays on the
// path of each operation (the "spine"), so an update that appends a token costs a shallow copy of the
// containers on its path (the message's keys, its list of parts, one part), not the size of the text, and every
// unchanged part is shared with the previous partial (which the view may
// still be showing). A path that does not fit the message throws a `PatchError`: the caller's base is not the
// server's, and it must wait for a full message.
//
// Not here: deriving patches (the server does that; the specs have a small differ of their own).

import type { PatchOp, PathElement } from '../api/protocol';

export type { PatchOp, PathElement };

/** A patch that does not fit the message it was applied to. */
export class PatchError extends Error {
	constructor(message: string) {
		super(message);
		this.name = 'PatchError';
	}
}

type Container = Record<string, unknown> | unknown[];

function isObject(v: unknown): v is Record<string, unknown> {
	return typeof v === 'object' && v !== null && !Array.isArray(v);
}

function describe(path: readonly PathElement[], upTo = path.length): string {
	return JSON.stringify(path.slice(0, upTo));
}

/** `obj[key] = value` as an own data property, also for `__proto__` (which plain assignment would turn into
 * a prototype change). */
function setKey(obj: Record<string, unknown>, key: string, value: unknown): void {
	if (key === '__proto__') Object.defineProperty(obj, key, { value, writable: true, enumerable: true, configurable: true });
	else obj[key] = value;
}

function shallowCopy(c: Container): Container {
	if (Array.isArray(c)) return c.slice();
	const out: Record<string, unknown> = {};
	for (const k of Object.keys(c)) setKey(out, k, c[k]);
	return out;
}

/** Applies `ops` in order to `message` and returns the new message; unchanged parts are shared with `message`,
 * which is left as it was. Throws a `PatchError` when an operation does not fit. */
export function applyPatch<T>(message: T, ops: readonly PatchOp[]): T {
	if (!Array.isArray(ops)) throw new PatchError('piface_patch is not a list');
	// Containers created by this call: operations after the first may change them in place, since nobody
	// else holds them yet.
	const owned = new WeakSet<object>();
	let root: unknown = message;

	/** A copy of `c` that this call may change (`c` itself when it is already one). */
	const own = (c: Container): Container => {
		if (owned.has(c)) return c;
		const copy = shallowCopy(c);
		owned.add(copy);
		return copy;
	};

	for (const op of ops) {
		if (!op || typeof op !== 'object' || !Array.isArray(op.path)) throw new PatchError(`bad patch operation ${JSON.stringify(op)}`);
		const path = op.path;
		const kind = 'append' in op ? 'append' : 'set' in op ? 'set' : 'delete' in op && op.delete === true ? 'delete' : null;
		if (!kind) throw new PatchError(`patch operation without append, set or delete at ${describe(path)}`);
		if (kind === 'append' && typeof (op as { append: unknown }).append !== 'string') throw new PatchError(`append of a non-string at ${describe(path)}`);

		if (path.length === 0) {
			if (kind !== 'set') throw new PatchError(`${kind} needs a non-empty path`);
			root = (op as { set: unknown }).set;
			continue;
		}

		// Walk to the parent of the last element, owning every container on the way.
		if (!isObject(root) && !Array.isArray(root)) throw new PatchError(`the message is not an object (at ${describe(path, 0)})`);
		root = own(root);
		let parent = root as Container;
		for (let i = 0; i < path.length - 1; i++) {
			const key = path[i]!;
			const child = read(parent, key, path, i);
			if (!isObject(child) && !Array.isArray(child)) throw new PatchError(`nothing to descend into at ${describe(path, i + 1)}`);
			const mine = own(child);
			write(parent, key, mine, path, i);
			parent = mine;
		}

		const last = path.length - 1;
		const key = path[last]!;
		if (kind === 'append') {
			const old = read(parent, key, path, last);
			if (typeof old !== 'string') throw new PatchError(`append to a non-string at ${describe(path)}`);
			write(parent, key, old + (op as { append: string }).append, path, last);
		} else if (kind === 'set') {
			write(parent, key, (op as { set: unknown }).set, path, last, true);
		} else {
			if (Array.isArray(parent) || typeof key !== 'string') throw new PatchError(`delete of a non-key at ${describe(path)}`);
			if (!Object.hasOwn(parent, key)) throw new PatchError(`delete of a missing key at ${describe(path)}`);
			delete parent[key];
		}
	}
	return root as T;
}

/** `c[key]`, checking that the key fits the container and exists. */
function read(c: Container, key: PathElement, path: readonly PathElement[], i: number): unknown {
	if (Array.isArray(c)) {
		if (!isIndex(key) || key >= c.length) throw new PatchError(`no array element at ${describe(path, i + 1)}`);
		return c[key];
	}
	if (typeof key !== 'string' || !Object.hasOwn(c, key)) throw new PatchError(`no key at ${describe(path, i + 1)}`);
	return c[key];
}

/** `c[key] = value`; with `push`, an index equal to the array's length appends. */
function write(c: Container, key: PathElement, value: unknown, path: readonly PathElement[], i: number, push = false): void {
	if (Array.isArray(c)) {
		if (!isIndex(key) || key > c.length || (key === c.length && !push)) throw new PatchError(`no array element at ${describe(path, i + 1)}`);
		c[key] = value;
		return;
	}
	if (typeof key !== 'string') throw new PatchError(`array index on an object at ${describe(path, i + 1)}`);
	setKey(c, key, value);
}

function isIndex(k: PathElement): k is number {
	return typeof k === 'number' && Number.isInteger(k) && k >= 0;
}
