import { describe, expect, it } from 'vitest';
import type { AgentInfo, ModelService } from '../api/types';
import {
	agentDetails,
	agentServices,
	agentTitle,
	ago,
	defaultAgent,
	downloadFraction,
	formatBytes,
	formatEta,
	formatMib,
	gpuSummary,
	keepChoice,
	lastSeen,
	liveSessionsText,
	pickerMode,
	serviceLine,
	shortDevice,
	shortGpuName,
	shortModelName,
	sortAgents,
	upAgents
} from './agents';

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

describe('speech services', () => {
	const GPU = 'cuda:0 (NVIDIA GeForce GTX 1080 Ti)';
	const service = (extra: Partial<ModelService> = {}): ModelService => ({ model: 'nvidia/parakeet-tdt-0.6b-v3', device: GPU, busy: 0, done: 12, state: 'ready', ...extra });
	const downloading = (extra: Partial<ModelService> = {}) =>
		service({ state: 'downloading', done: 0, file: 'parakeet-tdt-0.6b-v3.nemo', done_bytes: 117_000_000, total_bytes: 2_470_000_000, bytes_per_s: 52_000_000, eta_s: 45, ...extra });

	it('shows nothing without a service', () => {
		expect(serviceLine('speech', null)).toBe('');
		expect(serviceLine('tts', undefined)).toBe('');
		expect(downloadFraction(null)).toBeNull();
		expect(agentServices(agent('a', 'up', { speech: null, tts: null }))).toEqual([]);
		expect(agentServices(agent('a'))).toEqual([]);
	});

	it('says a ready service, with its requests', () => {
		expect(serviceLine('speech', service())).toBe('Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (GTX 1080 Ti) — ready, 12 done');
		expect(serviceLine('speech', service({ busy: 2, done: 0 }))).toBe('Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (GTX 1080 Ti) — ready, 2 busy, 0 done');
		expect(serviceLine('tts', service({ model: 'kakao-enterprise/vits-ljs', device: 'cpu', done: 3 }))).toBe('Text-to-speech: vits-ljs on cpu — ready, 3 done');
		expect(downloadFraction(service())).toBeNull();
	});

	it('says a loading and a failed service', () => {
		expect(serviceLine('speech', service({ state: 'loading', done: 0 }))).toBe('Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (GTX 1080 Ti) — loading');
		expect(serviceLine('tts', service({ state: 'failed', device: 'cpu', error: ' CUDA out of memory ' }))).toBe('Text-to-speech: parakeet-tdt-0.6b-v3 on cpu — failed: CUDA out of memory');
		expect(serviceLine('tts', service({ state: 'failed', device: 'cpu' }))).toBe('Text-to-speech: parakeet-tdt-0.6b-v3 on cpu — failed');
	});

	it('shows a download with percent, sizes, speed and ETA', () => {
		expect(serviceLine('speech', downloading())).toBe(
			'Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (GTX 1080 Ti) — downloading parakeet-tdt-0.6b-v3.nemo 4.7 % (117 MB of 2.5 GB, 52 MB/s, ETA 0:45)'
		);
		expect(downloadFraction(downloading())).toBeCloseTo(117 / 2470, 6);
		expect(downloadFraction(downloading({ done_bytes: 3e9 }))).toBe(1);
		expect(downloadFraction(downloading({ done_bytes: -5 }))).toBe(0);
	});

	it('leaves out an unknown ETA and speed', () => {
		expect(serviceLine('speech', downloading({ eta_s: null }))).toBe(
			'Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (GTX 1080 Ti) — downloading parakeet-tdt-0.6b-v3.nemo 4.7 % (117 MB of 2.5 GB, 52 MB/s)'
		);
		expect(serviceLine('speech', downloading({ eta_s: null, bytes_per_s: 0, done_bytes: 0 }))).toBe(
			'Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (GTX 1080 Ti) — downloading parakeet-tdt-0.6b-v3.nemo 0.0 % (0 B of 2.5 GB)'
		);
	});

	it('shows a download of unknown size without percent, as an indeterminate bar', () => {
		const unsized = downloading({ total_bytes: 0, eta_s: null });
		expect(serviceLine('speech', unsized)).toBe('Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (GTX 1080 Ti) — downloading parakeet-tdt-0.6b-v3.nemo (117 MB, 52 MB/s)');
		expect(downloadFraction(unsized)).toBeNull();
		expect(downloadFraction(downloading({ total_bytes: undefined }))).toBeNull();
		expect(serviceLine('tts', downloading({ file: undefined, device: '', done_bytes: 512, total_bytes: 0, bytes_per_s: undefined, eta_s: undefined }))).toBe(
			'Text-to-speech: parakeet-tdt-0.6b-v3 — downloading (512 B)'
		);
	});

	it('lists an up agent\'s services, speech first, with the download fraction', () => {
		const a = agent('gpu', 'up', { tts: service({ device: 'cpu' }), speech: downloading() });
		expect(agentServices(a).map((v) => [v.kind, v.label, v.state, v.fraction === null ? null : Math.round(v.fraction * 1000)])).toEqual([
			['speech', 'Speech-to-text', 'downloading', 47],
			['tts', 'Text-to-speech', 'ready', null]
		]);
		expect(agentServices(a)[1]!.text).toBe('Text-to-speech: parakeet-tdt-0.6b-v3 on cpu — ready, 12 done');
		expect(agentServices({ ...a, status: 'down' })).toEqual([]);
	});

	it('formats names, bytes and durations', () => {
		expect([shortModelName('nvidia/parakeet-tdt-0.6b-v3'), shortModelName('tiny'), shortModelName('a/b/')]).toEqual(['parakeet-tdt-0.6b-v3', 'tiny', 'b']);
		expect([shortDevice('cpu'), shortDevice(GPU), shortDevice('cuda:1')]).toEqual(['cpu', 'cuda:0 (GTX 1080 Ti)', 'cuda:1']);
		expect([formatBytes(0), formatBytes(999), formatBytes(4700), formatBytes(117_400_000), formatBytes(999_700_000), formatBytes(2.47e9), formatBytes(2e12)]).toEqual([
			'0 B',
			'999 B',
			'4.7 kB',
			'117 MB',
			'1 GB',
			'2.5 GB',
			'2 TB'
		]);
		expect([formatEta(0), formatEta(45), formatEta(723), formatEta(3723), formatEta(44.6)]).toEqual(['0:00', '0:45', '12:03', '1:02:03', '0:45']);
	});
});
