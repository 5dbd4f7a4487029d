import { describe, expect, it } from 'vitest';
import { attachmentRefusal, composerHeight, echoes, normalizePunctuation, parseComposer, sendType } from './commands';

describe('parseComposer', () => {
	it.each([
		['/compact', { kind: 'compact' }],
		['  /COMPACT keep the API notes  ', { kind: 'compact', instructions: 'keep the API notes' }],
		['/copy', { kind: 'copy' }],
		['/Reload', { kind: 'reload' }],
		['/copy that', { kind: 'prompt', text: '/copy that' }],
		['/reload now', { kind: 'prompt', text: '/reload now' }],
		['/help', { kind: 'prompt', text: '/help' }],
		['!ls -la', { kind: 'bash', command: 'ls -la', excludeFromContext: false }],
		['!!   git status', { kind: 'bash', command: 'git status', excludeFromContext: true }],
		['!', { kind: 'prompt', text: '!' }],
		['!!', { kind: 'prompt', text: '!!' }],
		['!!   ', { kind: 'prompt', text: '!!' }],
		['   ', { kind: 'empty' }],
		['hello', { kind: 'prompt', text: 'hello' }]
	])('%j', (input, want) => {
		expect(parseComposer(input)).toEqual(want);
	});
});

describe('sendType', () => {
	it('prompts when idle, steers while streaming, follows up with a modifier', () => {
		expect(sendType(false, { altKey: true })).toBe('prompt');
		expect(sendType(true)).toBe('steer');
		expect(sendType(true, { altKey: true })).toBe('follow_up');
		expect(sendType(true, { ctrlKey: true })).toBe('follow_up');
		expect(sendType(true, { metaKey: true })).toBe('follow_up');
	});
});

describe('normalizePunctuation', () => {
	it('replaces smart quotes, dashes, ellipsis and NBSP', () => {
		expect(normalizePunctuation('\u201Cit\u2019s\u201D \u2014 a\u2013b \u2212x\u2026\u00A0y')).toBe('"it\'s" -- a-b -x... y');
	});
});

describe('composerHeight', () => {
	it('grows to a 40% viewport cap and never below the minimum', () => {
		expect(composerHeight(10, 800)).toBe(44);
		expect(composerHeight(200, 800)).toBe(200);
		expect(composerHeight(600, 800)).toBe(320);
	});
});

describe('attachments and echo', () => {
	it('refuses /compact, /copy, /reload and bang shortcuts with attachments pending', () => {
		for (const cmd of ['/compact', '/compact keep it short', '/copy', '/reload']) {
			expect(attachmentRefusal(parseComposer(cmd), 1), cmd).toMatch(/does not take attachments/);
			expect(attachmentRefusal(parseComposer(cmd), 0), cmd).toBeNull();
		}
		expect(attachmentRefusal(parseComposer('!ls'), 2)).toMatch(/do not take attachments/);
		expect(attachmentRefusal(parseComposer('look at this'), 2)).toBeNull();
	});

	it("echoes prompts and !cmd as the user's bubble, not slash commands", () => {
		expect(echoes(parseComposer('!ls -la'))).toBe(true);
		expect(echoes(parseComposer('!!git status'))).toBe(true);
		expect(echoes(parseComposer('hello'))).toBe(true);
		expect(echoes(parseComposer('/compact'))).toBe(false);
	});
});
