import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../api/types';
import { agentLabel, clampPage, defaultModel, defaultProvider, displayName, groupSessions, pageCount, pageOf, PAGE_SIZE, THINKING_LEVELS } from './grouping';

const rec = (id: string, dir: string, minute: number, extra: Partial<SessionRecord> = {}): SessionRecord => ({
	piface_id: id,
	working_dir: dir,
	status: 'closed',
	last_active: new Date(Date.UTC(2026, 0, 1, 0, minute)).toISOString(),
	...extra
});

describe('grouping', () => {
	it('groups by project dir (else working dir), newest group and session first', () => {
		const groups = groupSessions([
			rec('a', '/p/sub', 1, { project_dir: '/p' }),
			rec('b', '/q', 5),
			rec('c', '/p', 9, { status: 'live' }),
			rec('d', '/q', 3, { attention_required: true })
		]);
		expect(groups.map((g) => g.dir)).toEqual(['/p', '/q']);
		expect(groups[0]!.sessions.map((s) => s.piface_id)).toEqual(['c', 'a']);
		expect(groups[1]!.sessions.map((s) => s.piface_id)).toEqual(['b', 'd']);
		expect(groups.map((g) => [g.anyLive, g.attention])).toEqual([[true, false], [false, true]]);
		expect(groups.map((g) => g.agent)).toEqual([null, null]);
	});

	it('keeps the same path on two agents apart', () => {
		const groups = groupSessions([
			rec('a', '/srv/app', 1, { agent: 'local' }),
			rec('b', '/srv/app', 2, { agent: 'gpu-box' }),
			rec('c', '/srv/app', 3, { agent: 'local' })
		]);
		expect(groups.map((g) => [g.agent, g.dir, g.sessions.map((s) => s.piface_id)])).toEqual([
			['local', '/srv/app', ['c', 'a']],
			['gpu-box', '/srv/app', ['b']]
		]);
		expect(new Set(groups.map((g) => g.key)).size).toBe(2);
	});
});

describe('pagination', () => {
	const items = Array.from({ length: 23 }, (_, i) => i);

	it('shows 10 per page and clamps the page', () => {
		expect(PAGE_SIZE).toBe(10);
		expect(pageCount(23)).toBe(3);
		expect(pageCount(0)).toBe(1);
		expect(pageOf(items, 2)).toEqual([20, 21, 22]);
		expect(pageOf(items, 7)).toEqual([20, 21, 22]);
		expect(clampPage(-1, 23)).toBe(0);
		expect(clampPage(3, 20)).toBe(1);
	});
});

describe('names and defaults', () => {
	it('falls back from session name to the directory basename to Session', () => {
		expect(displayName({ session_name: ' x ', working_dir: '/a/b' })).toBe('x');
		expect(displayName({ session_name: null, working_dir: '/a/b/' })).toBe('b');
		expect(displayName({ session_name: '', working_dir: '' })).toBe('Session');
		expect(displayName(null)).toBe('Session');
	});

	it('shows the agent of a session when the record has one', () => {
		expect(agentLabel(rec('a', '/', 0))).toBeNull();
		expect(agentLabel(rec('a', '/', 0, { agent: 'gpu-box' }))).toBe('gpu-box');
		expect(agentLabel(rec('a', '/', 0, { agent: '' }))).toBeNull();
		expect(agentLabel(rec('a', '/', 0, { agent: { id: 'x', hostname: 'h' } }))).toBe('x');
	});

	it('picks openai-codex / gpt-5.5 when available, else the first', () => {
		const models = [
			{ id: 'm1', provider: 'fake' },
			{ id: 'gpt-4', provider: 'openai-codex' },
			{ id: 'gpt-5.5', provider: 'openai-codex' }
		];
		expect(defaultProvider(models)).toBe('openai-codex');
		expect(defaultModel(models, 'openai-codex')).toBe('gpt-5.5');
		expect(defaultProvider(models.slice(0, 1))).toBe('fake');
		expect(defaultModel(models, 'fake')).toBe('m1');
		expect(defaultProvider([])).toBe('');
		expect(THINKING_LEVELS).toContain('xhigh');
	});
});

describe('branchName and copyName', () => {
	it("pre-fill '<name> branch' and '<name> copy', as the original", async () => {
		const { branchName, copyName } = await import('./grouping');
		expect(branchName({ session_name: 'API work', working_dir: '/src/api' })).toBe('API work branch');
		expect(copyName({ session_name: null, working_dir: '/src/api/' })).toBe('api copy');
	});
});
