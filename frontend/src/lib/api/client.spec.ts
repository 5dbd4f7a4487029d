import { afterEach, describe, expect, it, vi } from 'vitest';
import { api, ApiError, detailOf, isDirenvBlocked, withDirenvRetry, withQuery } from './client';

/** Replaces `fetch` with one answering `body` with `status`, recording what was asked. */
function stubFetch(status: number, body: unknown) {
	const calls: { url: string; init: RequestInit }[] = [];
	vi.stubGlobal('fetch', async (url: string, init: RequestInit) => {
		calls.push({ url, init });
		return new Response(typeof body === 'string' ? body : JSON.stringify(body), { status });
	});
	return calls;
}

afterEach(() => vi.unstubAllGlobals());

describe('client helpers', () => {
	it('builds query strings without empty parameters', () => {
		expect(withQuery('/api/fs/complete', { prefix: '/a b/', agent: 'gpu box' })).toBe('/api/fs/complete?prefix=%2Fa+b%2F&agent=gpu+box');
		expect(withQuery('/x', { agent: undefined, path: null, q: '' })).toBe('/x');
	});

	it('reads detail strings and FastAPI lists', () => {
		expect(detailOf({ detail: 'Directory does not exist: /x' }, 'f')).toBe('Directory does not exist: /x');
		expect(detailOf({ detail: [{ msg: 'field required' }, 'other'] }, 'f')).toBe('field required; other');
		expect(detailOf('nope', 'fallback')).toBe('fallback');
	});

	it('recognises a blocked .envrc', () => {
		expect(isDirenvBlocked(new ApiError(409, 'direnv: error .envrc is blocked'))).toBe(true);
		expect(isDirenvBlocked(new ApiError(409, 'pi exited'))).toBe(false);
		expect(isDirenvBlocked(new Error('direnv .envrc blocked'))).toBe(false);
	});
});

describe('cluster and workspace endpoints', () => {
	it('completes directories on an agent, keeping only strings', async () => {
		const calls = stubFetch(200, { matches: ['/home/u', 7, '/home/v'] });
		expect(await api.completeDir('/home/', 'gpu')).toEqual(['/home/u', '/home/v']);
		expect(calls[0]!.url).toBe('/api/fs/complete?prefix=%2Fhome%2F&agent=gpu');
		stubFetch(200, {});
		expect(await api.completeDir('/x')).toEqual([]);
	});

	it('lists agents', async () => {
		stubFetch(200, { agents: [{ name: 'local', status: 'up' }] });
		expect(await api.agents()).toEqual([{ name: 'local', status: 'up' }]);
		stubFetch(200, {});
		expect(await api.agents()).toEqual([]);
	});

	it('loads and saves a workspace config, with the agent', async () => {
		let calls = stubFetch(200, { project_dir: '/p', has_config_file: false, config: { version: 1 } });
		expect((await api.workspaceConfig('/p', 'local')).config).toEqual({ version: 1 });
		expect(calls[0]!.url).toBe('/api/workspace/config?path=%2Fp&agent=local');

		calls = stubFetch(200, { success: true, project_dir: '/p', config: { version: 1 } });
		await api.saveWorkspaceConfig('/p', { version: 1 }, 'local');
		expect(calls[0]!.init.method).toBe('PUT');
		expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ path: '/p', config: { version: 1 }, agent: 'local' });
		await api.saveWorkspaceConfig('/p', { version: 1 });
		expect(JSON.parse(String(calls[1]!.init.body))).toEqual({ path: '/p', config: { version: 1 } });
	});

	it('reads and gives workspace trust, sending the reviewed hash and the agent', async () => {
		let calls = stubFetch(200, { project_dir: '/p', sha256: 'ab', needs_trust: true, trusted: false, commands: [] });
		expect((await api.workspaceTrust('/p/sub', 'gpu')).project_dir).toBe('/p');
		expect(calls[0]!.url).toBe('/api/workspace/trust?path=%2Fp%2Fsub&agent=gpu');
		calls = stubFetch(200, { project_dir: '/p', sha256: 'ab', trusted: true });
		await api.trustWorkspace('/p', 'ab', 'gpu');
		expect(calls[0]!.init.method).toBe('POST');
		expect(JSON.parse(String(calls[0]!.init.body))).toEqual({ path: '/p', sha256: 'ab', agent: 'gpu' });
		await api.trustWorkspace('/p', 'ab');
		expect(JSON.parse(String(calls[1]!.init.body))).toEqual({ path: '/p', sha256: 'ab' });
	});

	it('turns an error body into an ApiError with the detail', async () => {
		stubFetch(400, { detail: 'Invalid config: version must be 1' });
		const err = await api.saveWorkspaceConfig('/p', {}).catch((e: unknown) => e);
		expect(err).toBeInstanceOf(ApiError);
		expect(err).toMatchObject({ status: 400, detail: 'Invalid config: version must be 1' });
		stubFetch(502, '<html>bad gateway</html>');
		expect(await api.health().catch((e: unknown) => (e as ApiError).detail)).toMatch(/^502/);
	});
});

describe('direnv allow-and-retry', () => {
	it('allows the directory on the agent that holds it, then retries once', async () => {
		const calls = stubFetch(200, { success: true });
		let tries = 0;
		const op = async () => {
			if (tries++ === 0) throw new ApiError(409, 'direnv: error /p/.envrc is blocked');
			return 'created';
		};
		const asked: string[] = [];
		const confirm = async (d: string) => (asked.push(d), true);
		expect(await withDirenvRetry('/p', op, confirm, 'gpu')).toBe('created');
		expect(asked).toHaveLength(1);
		expect(calls.map((c) => [c.url, JSON.parse(String(c.init.body))])).toEqual([['/api/direnv/allow', { working_dir: '/p', agent: 'gpu' }]]);
	});

	it('gives up when the user declines, and never retries other errors', async () => {
		const calls = stubFetch(200, { success: true });
		const blocked = async () => {
			throw new ApiError(409, 'direnv .envrc blocked');
		};
		await expect(withDirenvRetry('/p', blocked, async () => false)).rejects.toThrow('blocked');
		await expect(withDirenvRetry('/p', async () => Promise.reject(new ApiError(400, 'nope')), async () => true)).rejects.toThrow('nope');
		expect(calls).toHaveLength(0);
	});
});
