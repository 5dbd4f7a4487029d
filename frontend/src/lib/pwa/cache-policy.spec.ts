import { describe, expect, it } from 'vitest';
import { cacheName, cachePolicy, staleCaches } from './cache-policy';

const origin = 'https://box.tail1234.ts.net';
const facts = (url: string, mode = 'cors', method = 'GET') => ({ method, url: `${origin}${url}`, mode, origin, staticFiles: new Set(['/manifest.webmanifest', '/icons/icon-192.png']) });

describe('cachePolicy', () => {
	it('never touches the API, sockets, other origins or other methods', () => {
		expect(cachePolicy(facts('/api/sessions'))).toBe('pass');
		expect(cachePolicy(facts('/api/auth/status', 'navigate'))).toBe('pass');
		expect(cachePolicy(facts('/api/audio/tts/abc.mp3'))).toBe('pass');
		expect(cachePolicy(facts('/ws/sessions/x'))).toBe('pass');
		expect(cachePolicy(facts('/_app/immutable/entry/app.js', 'cors', 'POST'))).toBe('pass');
		expect(cachePolicy({ ...facts('/'), url: 'https://cdn.example/x.js' })).toBe('pass');
		expect(cachePolicy(facts('/something-else.txt'))).toBe('pass');
	});

	it('serves hashed assets cache-first, pages with the shell as fallback, static files network-first', () => {
		expect(cachePolicy(facts('/_app/immutable/chunks/abc.js'))).toBe('cache-first');
		expect(cachePolicy(facts('/session/abc?tab=files', 'navigate'))).toBe('shell');
		expect(cachePolicy(facts('/', 'navigate'))).toBe('shell');
		expect(cachePolicy(facts('/manifest.webmanifest'))).toBe('network-first');
	});
});

describe('cache versions', () => {
	it('deletes only our caches of other builds', () => {
		expect(staleCaches(['piface-shell-1', 'piface-shell-2', 'other-app'], '2')).toEqual(['piface-shell-1']);
		expect(cacheName('2')).toBe('piface-shell-2');
	});
});
