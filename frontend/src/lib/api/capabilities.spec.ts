import { describe, expect, it } from 'vitest';
import { get } from 'svelte/store';
import { capabilityLoader, CHECKING, parseCapabilities, UNREACHABLE } from './capabilities';

describe('capabilities', () => {
	it('reads speech and tts from the health answer, off unless literally true', () => {
		expect(parseCapabilities({ status: 'ok', speech: true, tts: false })).toEqual({ reachable: true, checking: false, speech: true, tts: false });
		expect(parseCapabilities({ status: 'ok' })).toEqual({ reachable: true, checking: false, speech: false, tts: false });
		expect(parseCapabilities({ status: 'ok', speech: 'yes', tts: 1 })).toMatchObject({ speech: false, tts: false });
		expect(parseCapabilities({ status: 'degraded', tts: true })).toMatchObject({ reachable: false, tts: true });
		expect(parseCapabilities(null)).toBe(UNREACHABLE);
		expect(CHECKING.checking).toBe(true);
	});

	it('asks the server once, and again after a failure or on refresh', async () => {
		let calls = 0;
		let fail = true;
		const load = capabilityLoader(async () => {
			calls++;
			if (fail) throw new Error('offline');
			return { status: 'ok', tts: true };
		});
		expect(await load()).toBe(UNREACHABLE);
		fail = false;
		const [a, b] = await Promise.all([load(), load()]);
		expect(a).toEqual(b);
		expect(a.tts).toBe(true);
		expect(calls).toBe(2);
		await load({ refresh: true });
		expect(calls).toBe(3);
	});

	it('the store starts as checking', async () => {
		const { capabilities } = await import('./capabilities');
		expect(get(capabilities)).toEqual(CHECKING);
	});
});
