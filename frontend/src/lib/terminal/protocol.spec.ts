import { describe, expect, it } from 'vitest';
import { closeMeaning, ctrlChord, EXTRA_KEYS, resizeMessage, StickyCtrl, termColors, terminalUrl } from './protocol';

describe('terminal protocol', () => {
	it('builds the URL from the page location', () => {
		expect(terminalUrl({ protocol: 'http:', host: '127.0.0.1:8000' }, 'a b')).toBe('ws://127.0.0.1:8000/ws/sessions/a%20b/terminal');
		expect(terminalUrl({ protocol: 'https:', host: 'pi.example' }, 'x')).toBe('wss://pi.example/ws/sessions/x/terminal');
	});

	it('clamps resizes like the server and skips sizes from before layout', () => {
		expect(resizeMessage(80, 24)).toBe('{"type":"resize","cols":80,"rows":24}');
		expect(resizeMessage(9999, 999)).toBe('{"type":"resize","cols":500,"rows":200}');
		expect(resizeMessage(80.4, 23.6)).toBe('{"type":"resize","cols":80,"rows":24}');
		expect(resizeMessage(0, 24)).toBeNull();
		expect(resizeMessage(NaN, 24)).toBeNull();
	});

	it('reads close codes', () => {
		expect(closeMeaning(4004)).toBe('gone');
		expect(closeMeaning(1011)).toBe('failed');
		expect(closeMeaning(4409)).toBe('untrusted');
		expect(closeMeaning(1006)).toBe('retry');
		expect(closeMeaning(1000)).toBe('retry');
	});

	it('sends the usual bytes for the phone keys', () => {
		const data = Object.fromEntries(EXTRA_KEYS.map((k) => [k.label, k.data]));
		expect(data['^C']).toBe('\x03');
		expect(data['↑']).toBe('\x1b[A');
		expect(EXTRA_KEYS.every((k) => k.title.length > 0)).toBe(true);
	});

	it("has the original's bar: Esc, Tab, a sticky Ctrl, arrows, |, ~, -, /", () => {
		expect(EXTRA_KEYS.map((k) => k.label)).toEqual(['Esc', 'Tab', 'Ctrl', '^C', '^D', '↑', '↓', '←', '→', '|', '~', '-', '/']);
		expect(EXTRA_KEYS.filter((k) => k.ctrl).map((k) => k.label)).toEqual(['Ctrl']);
		const data = Object.fromEntries(EXTRA_KEYS.map((k) => [k.label, k.data]));
		expect([data['|'], data['~'], data['-'], data['/']]).toEqual(['|', '~', '-', '/']);
	});

	it('turns the next key into its control character while Ctrl is armed (Ctrl-R, Ctrl-Z, Ctrl-L)', () => {
		expect(ctrlChord('r')).toBe('\x12');
		expect(ctrlChord('Z')).toBe('\x1a');
		expect(ctrlChord('l')).toBe('\x0c');
		expect(ctrlChord('[')).toBe('\x1b');
		expect(ctrlChord('?')).toBe('\x7f');
		expect(ctrlChord('1')).toBe('1');
		expect(ctrlChord('\x1b[A')).toBe('\x1b[A');
		const ctrl = new StickyCtrl();
		expect(ctrl.apply('r')).toBe('r');
		expect(ctrl.toggle()).toBe(true);
		expect(ctrl.apply('r')).toBe('\x12');
		expect(ctrl.armed).toBe(false);
		expect(ctrl.apply('r')).toBe('r');
		ctrl.toggle();
		ctrl.toggle();
		expect(ctrl.apply('z')).toBe('z');
	});

	it('takes colours from the skin tokens, with a readable palette on light backgrounds', () => {
		const tokens: Record<string, string> = { '--code-bg': '#000', '--code-text': '#eee', '--accent': '#f0f' };
		const dark = termColors((n) => tokens[n] ?? '', true);
		expect(dark).toMatchObject({ background: '#000', foreground: '#eee', cursor: '#f0f', cursorAccent: '#000' });
		expect(dark.yellow).toBeUndefined();
		const light = termColors(() => '', false);
		expect(light.background).toBe('#f6f8fa');
		expect(light.yellow).toBeDefined();
	});
});
