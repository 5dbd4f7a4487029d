import { describe, expect, it } from 'vitest';
import { sessionTitle } from './attention';

describe('session title', () => {
	it('adds the awaiting suffix only while awaiting', () => {
		expect(sessionTitle('api', false)).toBe('api — piface');
		expect(sessionTitle('api', true)).toBe('api — piface (awaiting instructions)');
	});
});
