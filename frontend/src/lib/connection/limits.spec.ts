import { describe, expect, it } from 'vitest';
import { MAX_CLIENT_MESSAGE_BYTES, closeNotice, messageBytes, oversizeMessage } from './limits';

describe('oversizeMessage', () => {
	it('lets a message up to the limit through, counting UTF-8 bytes of the JSON', () => {
		expect(messageBytes({ m: 'é' })).toBe(10);
		const fits = { type: 'prompt', message: 'x'.repeat(MAX_CLIENT_MESSAGE_BYTES - 30) };
		expect(messageBytes(fits)).toBeLessThanOrEqual(MAX_CLIENT_MESSAGE_BYTES);
		expect(oversizeMessage(fits)).toBeNull();
	});

	it('refuses one past it and says how big it was', () => {
		const big = { type: 'prompt', message: 'é'.repeat(MAX_CLIENT_MESSAGE_BYTES / 2) };
		expect(oversizeMessage(big)).toMatch(/^This message is 1\.0 MiB; the server takes at most 1\.0 MiB per message\. It was kept/);
		expect(oversizeMessage({ message: 'x'.repeat(3 << 20) })).toMatch(/^This message is 3\.0 MiB/);
	});
});

describe('closeNotice', () => {
	it('explains a message-too-big close, with or without the server reason', () => {
		expect(closeNotice(1009, 'message over 1 MiB')).toBe('The server closed the connection: message over 1 MiB. Reconnecting…');
		expect(closeNotice(1009, '')).toBe('The server closed the connection: a message was too large. Reconnecting…');
	});

	it('passes on any other reason the server gave', () => {
		expect(closeNotice(1008, 'too many sockets')).toBe('The server closed the connection: too many sockets');
	});

	it('says nothing for normal closes and network drops', () => {
		expect(closeNotice(1000, 'bye')).toBeNull();
		expect(closeNotice(1001, 'going away')).toBeNull();
		expect(closeNotice(1006, '')).toBeNull();
		expect(closeNotice(1011, '')).toBeNull();
	});
});
