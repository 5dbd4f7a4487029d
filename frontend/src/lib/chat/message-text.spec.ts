import { describe, expect, it } from 'vitest';
import { bashText, errorDetail, errorLine, latestAssistantText, messageText, thinkingText, toolCallLabel, userText } from './message-text';

describe('message text', () => {
	it('concatenates text and thinking parts', () => {
		const m = { role: 'assistant', content: [{ type: 'thinking', thinking: 'a' }, { type: 'text', text: 'b' }, { type: 'text', text: 'c' }, { type: 'thinking', thinking: 'd' }] };
		expect(messageText(m)).toBe('bc');
		expect(thinkingText(m)).toBe('ad');
		expect(messageText({ role: 'user', content: 'plain' })).toBe('plain');
	});

	it('explains failed model requests from JSON or plain errors', () => {
		expect(errorLine({ role: 'assistant', content: [], errorMessage: '500 {"error":{"message":"boom"}}' })).toBe('Model request failed: boom');
		expect(errorLine({ role: 'assistant', content: [], errorMessage: '{"detail":"nope"}' })).toBe('Model request failed: nope');
		expect(errorLine({ role: 'assistant', content: [], errorMessage: 'timeout' })).toBe('Model request failed: timeout');
		expect(errorLine({ role: 'assistant', content: [{ type: 'text', text: 'x' }], errorMessage: 'e' })).toBeNull();
		expect(errorDetail('{broken')).toBe('{broken');
	});

	it('finds the latest assistant text for /copy, including error lines', () => {
		const msgs = [
			{ role: 'assistant', content: [{ type: 'text', text: 'first' }] },
			{ role: 'assistant', content: [], errorMessage: 'bad' },
			{ role: 'assistant', content: [{ type: 'toolCall', id: '1', name: 'bash', arguments: {} }] },
			{ role: 'user', content: 'q' }
		];
		expect(latestAssistantText(msgs)).toBe('Model request failed: bad');
		expect(latestAssistantText(msgs.slice(0, 1))).toBe('first');
		expect(latestAssistantText([])).toBeNull();
	});

	it('labels tool calls with shortened argument values', () => {
		expect(toolCallLabel('bash', { command: 'ls -la', timeout: 5 })).toBe('bash(ls -la, 5)');
		expect(toolCallLabel('read', { path: 'x'.repeat(100) })).toHaveLength('read()'.length + 60);
		expect(toolCallLabel('noop', undefined)).toBe('noop()');
	});

	it('formats bash executions and attachment-only user messages', () => {
		expect(bashText({ role: 'bashExecution', command: 'ls', output: 'a\n', excludeFromContext: true })).toBe('$ ls\na\n\n(excluded from model context)');
		expect(userText({ role: 'user', content: [{ type: 'image' }, { type: 'image' }] })).toBe('[attached 2 file(s)]');
	});
});
