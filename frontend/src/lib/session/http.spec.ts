import { afterEach, describe, expect, it, vi } from 'vitest';
import { ApiError } from '../api/client';
import { listDir, rawUrl, readFile } from '../files/api';
import { gitDiff, gitStatus } from '../git/api';
import { errorText, getJson } from './http';

function mockFetch(status: number, body: string) {
	const calls: string[] = [];
	vi.stubGlobal('fetch', async (url: string) => {
		calls.push(url);
		return new Response(body, { status, statusText: status === 200 ? 'OK' : 'Error' });
	});
	return calls;
}

afterEach(() => vi.unstubAllGlobals());

describe('getJson', () => {
	it('parses JSON and turns errors into ApiError with the detail', async () => {
		mockFetch(200, '{"a":1}');
		expect(await getJson('/x')).toEqual({ a: 1 });
		mockFetch(403, '{"detail":"Outside the allowed file roots: /etc"}');
		const err = await getJson('/x').catch((e: unknown) => e);
		expect(err).toBeInstanceOf(ApiError);
		expect(err).toMatchObject({ status: 403, detail: 'Outside the allowed file roots: /etc' });
		expect(errorText(err)).toBe('Outside the allowed file roots: /etc');
		mockFetch(502, 'Bad gateway');
		expect(errorText(await getJson('/x').catch((e: unknown) => e))).toBe('502 Error');
		expect(errorText(new TypeError('Failed to fetch'))).toBe('Failed to fetch');
	});
});

describe('tool endpoints', () => {
	it('name the path and the agent', async () => {
		const calls = mockFetch(200, '{"entries":[{"name":"a","path":"/r/a","is_dir":false}]}');
		expect(await listDir('/r', 'gpu box')).toEqual([{ name: 'a', path: '/r/a', is_dir: false }]);
		await readFile('/r/a b.md', undefined);
		expect(calls).toEqual(['/api/fs/list?path=%2Fr&agent=gpu+box', '/api/fs/file?path=%2Fr%2Fa+b.md']);
		expect(rawUrl('/r/img.png', 'local')).toBe('/api/fs/raw?path=%2Fr%2Fimg.png&agent=local');
	});

	it('tolerate a listing without entries', async () => {
		mockFetch(200, '{}');
		expect(await listDir('/r', undefined)).toEqual([]);
	});

	it('ask git for status and one side of a diff', async () => {
		const calls = mockFetch(200, '{"is_repo":false,"files":[]}');
		await gitStatus('s 1');
		await gitDiff('s1', 'src/a.ts', true);
		await gitDiff('s1', null, false);
		expect(calls).toEqual([
			'/api/sessions/s%201/git/status',
			'/api/sessions/s1/git/diff?path=src%2Fa.ts&staged=true',
			'/api/sessions/s1/git/diff?staged=false'
		]);
	});
});
