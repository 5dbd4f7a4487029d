import { describe, expect, it } from 'vitest';
import type { AgentInfo } from '../api/types';
import { agentDetails, agentTitle, ago, defaultAgent, formatMib, gpuSummary, keepChoice, lastSeen, liveSessionsText, pickerMode, shortGpuName, sortAgents, upAgents } from './agents';

const agent = (name: string, status: AgentInfo['status'] = 'up', extra: Partial<AgentInfo> = {}): AgentInfo => ({ name, status, ...extra });

describe('agent order and choice', () => {
	const cluster = [agent('zeta'), agent('local', 'down'), agent('alpha'), agent('beta', 'down')];

	it('lists up agents first, local first among equals, then by name', () => {
		expect(sortAgents(cluster).map((a) => a.name)).toEqual(['alpha', 'zeta', 'local', 'beta']);
		expect(sortAgents([agent('b'), agent('local'), agent('a')]).map((a) => a.name)).toEqual(['local', 'a', 'b']);
		expect(upAgents(cluster).map((a) => a.name)).toEqual(['alpha', 'zeta']);
	});

	it('hides the picker without agents, fixes it with one, offers a choice with more', () => {
		expect(pickerMode([])).toBe('none');
		expect(pickerMode([agent('local', 'down')])).toBe('none');
		expect(pickerMode([agent('local'), agent('gpu', 'down')])).toBe('fixed');
		expect(pickerMode([agent('local'), agent('gpu')])).toBe('choose');
	});

	it('preselects the preferred agent if up, else local, else the only agent, else nothing', () => {
		expect(defaultAgent([agent('gpu'), agent('local')])).toBe('local');
		expect(defaultAgent([agent('gpu'), agent('local')], 'gpu')).toBe('gpu');
		expect(defaultAgent([agent('gpu', 'down'), agent('local')], 'gpu')).toBe('local');
		expect(defaultAgent([agent('gpu'), agent('local', 'down')])).toBe('gpu');
		expect(defaultAgent([agent('a'), agent('b')])).toBe('');
		expect(defaultAgent([])).toBe('');
	});

	it('keeps a choice while its agent is up', () => {
		const both = [agent('local'), agent('gpu')];
		expect(keepChoice(both, 'gpu')).toBe('gpu');
		expect(keepChoice([agent('local'), agent('gpu', 'down')], 'gpu')).toBe('local');
		expect(keepChoice(both, '')).toBe('local');
	});
});

describe('agent descriptions', () => {
	it('names the host when it differs from the agent name', () => {
		expect(agentTitle({ name: 'local', hostname: 'box' })).toBe('local (box)');
		expect(agentTitle({ name: 'box', hostname: 'box' })).toBe('box');
		expect(agentTitle({ name: 'box', hostname: null })).toBe('box');
	});

	it('summarises GPUs, counting identical cards', () => {
		const card = (index: number, name: string, memory_mib: number) => ({ index, name, memory_mib, uuid: `GPU-${index}` });
		expect(gpuSummary([])).toBe('');
		expect(gpuSummary(undefined)).toBe('');
		expect(gpuSummary([card(0, 'NVIDIA GeForce RTX 4090', 24564), card(1, 'NVIDIA GeForce RTX 4090', 24564)])).toBe('2 × RTX 4090 (24 GiB)');
		expect(gpuSummary([card(0, 'NVIDIA H100 80GB HBM3', 81559), card(1, 'Tesla T4', 15360)])).toBe('H100 80GB HBM3 (80 GiB) + Tesla T4 (15 GiB)');
		expect(shortGpuName('NVIDIA')).toBe('NVIDIA');
		expect(formatMib(512)).toBe('512 MiB');
		expect(formatMib(8 * 1024 + 400)).toBe('8.4 GiB');
	});

	it('lists host, OS, pi version and GPUs', () => {
		expect(
			agentDetails(agent('local', 'up', { hostname: 'box', os: 'linux x86_64', pi_version: '0.73.1', gpus: [{ index: 0, name: 'Tesla T4', memory_mib: 15360 }] }))
		).toEqual(['box', 'linux x86_64', 'pi 0.73.1', 'Tesla T4 (15 GiB)']);
		expect(agentDetails(agent('box', 'up', { hostname: 'box', live_sessions: 3 }))).toEqual([]);
		expect([liveSessionsText(0), liveSessionsText(1), liveSessionsText(2)]).toEqual(['0 live sessions', '1 live session', '2 live sessions']);
	});

	it('says when a down agent was last seen', () => {
		const now = Date.parse('2026-05-01T12:00:00Z');
		expect(lastSeen(agent('a', 'down', { last_seen: '2026-05-01T11:55:00Z' }), now)).toBe('last seen 5 min ago');
		expect(lastSeen(agent('a', 'up', { last_seen: '2026-05-01T11:55:00Z' }), now)).toBe('');
		expect(lastSeen(agent('a', 'down', { last_seen: 'garbage' }), now)).toBe('');
		expect([ago(1000), ago(42_000), ago(3 * 3600_000), ago(2 * 86400_000), ago(-5)]).toEqual(['just now', '42 s ago', '3 h ago', '2 d ago', 'just now']);
	});
});
