import { describe, expect, it } from 'vitest';
import { closeNotice } from './limits';

describe('closeNotice', () => {
	it('explains a message-too-big close, with or without the server reason', () => {
		expect(closeNotice(1009, 'message over 1 MiB')).toBe('The server closed the connection: message over 1 MiB.');
		expect(closeNotice(1009, '')).toBe('The server closed the connection: a message was too large.');
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
