import { describe, expect, it } from 'vitest';
import type { DashboardFrame } from '../api/protocol';
import type { AgentInfo, SessionRecord } from '../api/types';
import { dashboardSocketUrl, healthOf, initialDashboard, liveByAgent, parseDashboardFrame, reduceDashboard, snapshot } from './dashboard-state';

const rec = (id: string, extra: Partial<SessionRecord> = {}): SessionRecord => ({ piface_id: id, working_dir: '/p', status: 'live', agent: 'local', ...extra });
const agent = (name: string, status: AgentInfo['status'] = 'up'): AgentInfo => ({ name, status });
const run = (frames: DashboardFrame[]) => frames.reduce(reduceDashboard, initialDashboard);

describe('dashboard reducer', () => {
	it('starts empty and not loaded; a snapshot replaces everything', () => {
		expect(initialDashboard).toEqual({ sessions: [], agents: [], loaded: false });
		const s = run([
			{ type: 'piface_dashboard', sessions: [rec('a')], agents: [agent('local')] },
			{ type: 'piface_dashboard', sessions: [rec('b')], agents: [agent('gpu')] }
		]);
		expect(s.loaded).toBe(true);
		expect(s.sessions.map((x) => x.piface_id)).toEqual(['b']);
		expect(s.agents.map((x) => x.name)).toEqual(['gpu']);
	});

	it('upserts sessions in place and appends new ones', () => {
		const s = run([
			{ type: 'piface_dashboard', sessions: [rec('a'), rec('b')], agents: [] },
			{ type: 'piface_session', session: rec('a', { status: 'closed' }) },
			{ type: 'piface_session', session: rec('c') }
		]);
		expect(s.sessions.map((x) => [x.piface_id, x.status])).toEqual([
			['a', 'closed'],
			['b', 'live'],
			['c', 'live']
		]);
	});

	it('removes sessions, and leaves the state alone for an unknown id', () => {
		const before = run([{ type: 'piface_dashboard', sessions: [rec('a'), rec('b')], agents: [] }]);
		const after = reduceDashboard(before, { type: 'piface_session_removed', piface_id: 'a' });
		expect(after.sessions.map((x) => x.piface_id)).toEqual(['b']);
		expect(reduceDashboard(after, { type: 'piface_session_removed', piface_id: 'zzz' })).toBe(after);
	});

	it('tracks agents going up, down and removed', () => {
		const s = run([
			{ type: 'piface_dashboard', sessions: [], agents: [agent('local'), agent('gpu')] },
			{ type: 'piface_agent', agent: agent('gpu', 'down') },
			{ type: 'piface_agent', agent: agent('new') },
			{ type: 'piface_agent', agent: agent('local', 'removed') }
		]);
		expect(s.agents.map((a) => [a.name, a.status])).toEqual([
			['gpu', 'down'],
			['new', 'up']
		]);
		expect(reduceDashboard(s, { type: 'piface_agent', agent: agent('ghost', 'removed') })).toBe(s);
	});

	it('ignores malformed entries and unknown frames', () => {
		const s = snapshot([rec('a'), { nope: 1 }, null], [agent('x'), { name: 1 }, agent('y', 'removed')]);
		expect(s.sessions).toHaveLength(1);
		expect(s.agents.map((a) => a.name)).toEqual(['x']);
		expect(snapshot(undefined, undefined)).toEqual({ sessions: [], agents: [], loaded: true });
		expect(reduceDashboard(s, { type: 'piface_other' } as unknown as DashboardFrame)).toBe(s);
		expect(reduceDashboard(s, { type: 'piface_session', session: {} } as unknown as DashboardFrame)).toBe(s);
	});

	it('counts live sessions per agent from the records', () => {
		const counts = liveByAgent([rec('a'), rec('b', { agent: 'gpu' }), rec('c', { status: 'closed' }), rec('d', { agent: null })]);
		expect([...counts]).toEqual([
			['local', 1],
			['gpu', 1]
		]);
	});
});

describe('dashboard socket messages', () => {
	it('parses the known frames and rejects the rest', () => {
		expect(parseDashboardFrame(JSON.stringify({ type: 'piface_dashboard', sessions: [], agents: [] }))?.type).toBe('piface_dashboard');
		expect(parseDashboardFrame(JSON.stringify({ type: 'piface_session', session: rec('a') }))?.type).toBe('piface_session');
		expect(parseDashboardFrame(JSON.stringify({ type: 'piface_session_removed', piface_id: 'a' }))?.type).toBe('piface_session_removed');
		expect(parseDashboardFrame(JSON.stringify({ type: 'piface_agent', agent: agent('a') }))?.type).toBe('piface_agent');
		for (const bad of ['nope', '[]', 'null', JSON.stringify({ type: 'piface_session' }), JSON.stringify({ type: 'piface_agent', agent: {} }), JSON.stringify({ type: 'x' })]) {
			expect(parseDashboardFrame(bad)).toBeNull();
		}
		expect(parseDashboardFrame(new ArrayBuffer(2))).toBeNull();
	});

	it('builds the socket URL from the page location', () => {
		expect(dashboardSocketUrl({ protocol: 'http:', host: '127.0.0.1:7832' })).toBe('ws://127.0.0.1:7832/ws/dashboard');
		expect(dashboardSocketUrl({ protocol: 'https:', host: 'box.ts.net' })).toBe('wss://box.ts.net/ws/dashboard');
	});
});

describe('health badge', () => {
	const h = (synced: boolean, everSynced: boolean, checking: boolean, reachable: boolean) => healthOf({ synced, everSynced, checking, reachable });

	it('is online while synced, reconnecting once the socket is lost, else what /api/health said', () => {
		expect(h(true, true, true, false)).toBe('online');
		expect(h(false, true, false, true)).toBe('reconnecting');
		expect(h(false, false, true, false)).toBe('checking');
		expect(h(false, false, false, true)).toBe('online');
		expect(h(false, false, false, false)).toBe('unreachable');
	});
});
