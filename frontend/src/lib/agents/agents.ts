// The cluster's agents as the dashboard shows them: order, one-line descriptions, and which agent the
// New Session form offers and preselects. Pure functions over `AgentInfo` (api/types.ts).
//
// Not here: fetching (api/client.ts) and live updates (dashboard/dashboard-state.ts).

import type { AgentInfo, GpuInfo, ModelService, ModelServiceState } from '../api/types';

/** Name of the in-process agent of `piface serve` (and of sessions imported from the original). */
export const LOCAL_AGENT = 'local';

/** Up agents first, `local` first among equals, then by name. */
export function sortAgents(agents: readonly AgentInfo[]): AgentInfo[] {
	const rank = (a: AgentInfo) => (a.status === 'up' ? 0 : 1);
	return [...agents].sort(
		(a, b) => rank(a) - rank(b) || Number(b.name === LOCAL_AGENT) - Number(a.name === LOCAL_AGENT) || a.name.localeCompare(b.name)
	);
}

/** The agents a new session can start on. */
export function upAgents(agents: readonly AgentInfo[]): AgentInfo[] {
	return sortAgents(agents.filter((a) => a.status === 'up'));
}

/** How the form shows the agent choice: nothing to choose from (older server, or every agent down), one
 * agent shown as a fixed value, or a picker. */
export type PickerMode = 'none' | 'fixed' | 'choose';

export function pickerMode(agents: readonly AgentInfo[]): PickerMode {
	const n = upAgents(agents).length;
	return n === 0 ? 'none' : n === 1 ? 'fixed' : 'choose';
}

/** The agent the form preselects: `preferred` (e.g. the group's agent) if it is up, else `local` if up, else
 * the only up agent; '' when the user has to choose. */
export function defaultAgent(agents: readonly AgentInfo[], preferred?: string | null): string {
	const up = upAgents(agents);
	if (preferred && up.some((a) => a.name === preferred)) return preferred;
	if (up.some((a) => a.name === LOCAL_AGENT)) return LOCAL_AGENT;
	return up.length === 1 ? up[0]!.name : '';
}

/** Keeps a choice while its agent stays up; otherwise falls back to the default. */
export function keepChoice(agents: readonly AgentInfo[], current: string, preferred?: string | null): string {
	return current && upAgents(agents).some((a) => a.name === current) ? current : defaultAgent(agents, preferred);
}

/** `local (box)`: the name, with the host name when it says something more. */
export function agentTitle(a: Pick<AgentInfo, 'name' | 'hostname'>): string {
	const host = a.hostname?.trim();
	return host && host !== a.name ? `${a.name} (${host})` : a.name;
}

/** `2 × RTX 4090 (24 GiB)`, `RTX 4090 (24 GiB) + A100 (80 GiB)`, or '' without GPUs. */
export function gpuSummary(gpus: readonly GpuInfo[] | null | undefined): string {
	if (!gpus?.length) return '';
	const counts = new Map<string, number>();
	for (const g of gpus) {
		const label = `${shortGpuName(g.name)}${g.memory_mib ? ` (${formatMib(g.memory_mib)})` : ''}`;
		counts.set(label, (counts.get(label) ?? 0) + 1);
	}
	return [...counts].map(([label, n]) => (n > 1 ? `${n} × ${label}` : label)).join(' + ');
}

/** `NVIDIA GeForce RTX 4090` → `RTX 4090`: the vendor words say nothing on a dashboard. */
export function shortGpuName(name: string): string {
	return name.replace(/^(NVIDIA\s+)?(GeForce\s+)?/i, '').trim() || name;
}

/** MiB as the GiB a card is sold with (`24564` → `24 GiB`), or MiB below 1 GiB. */
export function formatMib(mib: number): string {
	if (mib < 1024) return `${Math.round(mib)} MiB`;
	const gib = mib / 1024;
	return `${gib >= 10 ? Math.round(gib) : Math.round(gib * 10) / 10} GiB`;
}

/** The details of an agent: host, OS, pi version, GPUs. (Live sessions are counted from the records, since
 * the socket's agent updates do not carry them: dashboard-state.ts `liveByAgent`.) */
export function agentDetails(a: AgentInfo): string[] {
	const parts: string[] = [];
	if (a.hostname && a.hostname !== a.name) parts.push(a.hostname);
	if (a.os) parts.push(a.os);
	if (a.pi_version) parts.push(`pi ${a.pi_version}`);
	const gpus = gpuSummary(a.gpus);
	if (gpus) parts.push(gpus);
	return parts;
}

/** `1 live session`, `3 live sessions`. */
export function liveSessionsText(n: number): string {
	return n === 1 ? '1 live session' : `${n} live sessions`;
}

/** "last seen 5 min ago" for an agent that is down; '' when unknown or up. */
export function lastSeen(a: Pick<AgentInfo, 'status' | 'last_seen'>, now: number): string {
	if (a.status === 'up' || !a.last_seen) return '';
	const t = Date.parse(a.last_seen);
	if (!Number.isFinite(t)) return '';
	return `last seen ${ago(now - t)}`;
}

/** A coarse, human duration: `just now`, `42 s ago`, `5 min ago`, `3 h ago`, `2 d ago`. */
export function ago(ms: number): string {
	const s = Math.max(0, Math.round(ms / 1000));
	if (s < 5) return 'just now';
	if (s < 60) return `${s} s ago`;
	if (s < 3600) return `${Math.floor(s / 60)} min ago`;
	if (s < 86400) return `${Math.floor(s / 3600)} h ago`;
	return `${Math.floor(s / 86400)} d ago`;
}

/** An agent's model services, as `AgentInfo` names them. */
export type ServiceKind = 'speech' | 'tts';

export const SERVICE_LABELS: Record<ServiceKind, string> = { speech: 'Speech-to-text', tts: 'Text-to-speech' };

/** `nvidia/parakeet-tdt-0.6b-v3` → `parakeet-tdt-0.6b-v3`: the repository's owner is noise on a dashboard. */
export function shortModelName(model: string): string {
	return model.trim().split('/').filter(Boolean).pop() ?? model;
}

/** `cuda:0 (NVIDIA GeForce GTX 1080 Ti)` → `cuda:0 (GTX 1080 Ti)`, like the GPU summary; `cpu` as is. */
export function shortDevice(device: string): string {
	return device.trim().replace(/\(([^)]*)\)/, (_, name: string) => `(${shortGpuName(name)})`);
}

/** Bytes in decimal units as downloads are counted: `512 B`, `4.7 kB`, `117 MB`, `2.5 GB`. */
export function formatBytes(bytes: number): string {
	const n = Math.max(0, bytes);
	if (n < 1000) return `${Math.round(n)} B`;
	const units = ['kB', 'MB', 'GB', 'TB'];
	let v = n / 1000;
	let i = 0;
	// Step up while rounding would show 1000 (999.7 MB → 1 GB).
	while (i < units.length - 1 && (v >= 10 ? Math.round(v) : Math.round(v * 10) / 10) >= 1000) {
		v /= 1000;
		i++;
	}
	return `${v >= 10 ? Math.round(v) : Math.round(v * 10) / 10} ${units[i]}`;
}

/** Seconds left as a clock: `0:45`, `12:03`, `1:02:03`. */
export function formatEta(seconds: number): string {
	const s = Math.max(0, Math.round(seconds));
	const h = Math.floor(s / 3600);
	const m = Math.floor((s % 3600) / 60);
	const ss = String(s % 60).padStart(2, '0');
	return h ? `${h}:${String(m).padStart(2, '0')}:${ss}` : `${m}:${ss}`;
}

/** How far a download is, 0…1; null when the service is not downloading or the size is unknown (an
 * indeterminate progress bar). */
export function downloadFraction(s: ModelService | null | undefined): number | null {
	if (s?.state !== 'downloading') return null;
	const total = s.total_bytes ?? 0;
	if (!(total > 0) || !Number.isFinite(total)) return null;
	return Math.min(1, Math.max(0, (s.done_bytes ?? 0) / total));
}

/** What a service is doing, after the dash of its line. */
export function serviceStatus(s: ModelService): string {
	switch (s.state) {
		case 'ready': {
			const busy = s.busy > 0 ? `, ${s.busy} busy` : '';
			return `ready${busy}, ${s.done ?? 0} done`;
		}
		case 'loading':
			return 'loading';
		case 'failed':
			return s.error?.trim() ? `failed: ${s.error.trim()}` : 'failed';
		case 'downloading': {
			const fraction = downloadFraction(s);
			const head = ['downloading', s.file?.trim(), fraction === null ? '' : `${(fraction * 100).toFixed(1)} %`].filter(Boolean).join(' ');
			const done = formatBytes(s.done_bytes ?? 0);
			const parts = [fraction === null ? done : `${done} of ${formatBytes(s.total_bytes ?? 0)}`];
			if ((s.bytes_per_s ?? 0) > 0) parts.push(`${formatBytes(s.bytes_per_s!)}/s`);
			if (s.eta_s != null && Number.isFinite(s.eta_s)) parts.push(`ETA ${formatEta(s.eta_s)}`);
			return `${head} (${parts.join(', ')})`;
		}
		default:
			// A state this UI does not know yet: say it as the server does.
			return String((s as { state?: unknown }).state ?? '');
	}
}

/** `Speech-to-text: parakeet-tdt-0.6b-v3 on cuda:0 (GTX 1080 Ti) — ready, 12 done`; '' without the service. */
export function serviceLine(kind: ServiceKind, s: ModelService | null | undefined): string {
	if (!s) return '';
	const device = s.device?.trim() ? ` on ${shortDevice(s.device)}` : '';
	const status = serviceStatus(s);
	return `${SERVICE_LABELS[kind]}: ${shortModelName(s.model ?? '')}${device}${status ? ` — ${status}` : ''}`;
}

/** One service line of the agents panel. `fraction` is only meaningful while `state` is `downloading`. */
export interface ServiceView {
	kind: ServiceKind;
	label: string;
	text: string;
	state: ModelServiceState;
	fraction: number | null;
}

/** The services an agent shows: speech then TTS, those it runs; none while it is not up (what it last
 * reported is not on offer). */
export function agentServices(a: Pick<AgentInfo, 'status' | 'speech' | 'tts'>): ServiceView[] {
	if (a.status !== 'up') return [];
	const views: ServiceView[] = [];
	for (const kind of ['speech', 'tts'] as const) {
		const s = a[kind];
		if (!s) continue;
		views.push({ kind, label: SERVICE_LABELS[kind], text: serviceLine(kind, s), state: s.state, fraction: downloadFraction(s) });
	}
	return views;
}
