// The dashboard's session list (ui.md §2): sessions grouped by project directory (falling back to the working
// directory) on their agent, since the same path on two machines is two directories; groups ordered by their
// most recent session, sessions by last activity, 10 per page.

import type { ModelInfo, SessionRecord } from '../api/types';

export const PAGE_SIZE = 10;

export interface SessionGroup {
	/** Unique per group: the agent and the directory. */
	key: string;
	dir: string;
	/** The agent the group's sessions run on; null for records of servers without agents. */
	agent: string | null;
	sessions: SessionRecord[];
	/** Newest `last_active` in the group (ms since epoch; 0 when unknown). */
	latest: number;
	anyLive: boolean;
	attention: boolean;
}

export function activeTime(s: SessionRecord): number {
	const t = Date.parse(s.last_active ?? s.created_at ?? '');
	return Number.isFinite(t) ? t : 0;
}

export function groupDir(s: SessionRecord): string {
	return s.project_dir || s.working_dir;
}

/** The key of a session's group. */
export function groupKey(s: SessionRecord): string {
	return `${agentLabel(s) ?? ''}\u0000${groupDir(s)}`;
}

export function groupSessions(sessions: readonly SessionRecord[]): SessionGroup[] {
	const by = new Map<string, SessionRecord[]>();
	for (const s of sessions) {
		const key = groupKey(s);
		const list = by.get(key);
		if (list) list.push(s);
		else by.set(key, [s]);
	}
	const groups: SessionGroup[] = [];
	for (const [key, list] of by) {
		list.sort((a, b) => activeTime(b) - activeTime(a));
		groups.push({
			key,
			dir: groupDir(list[0]!),
			agent: agentLabel(list[0]!),
			sessions: list,
			latest: list.length ? activeTime(list[0]!) : 0,
			anyLive: list.some((s) => s.status === 'live'),
			attention: list.some((s) => s.attention_required === true)
		});
	}
	groups.sort((a, b) => b.latest - a.latest || a.dir.localeCompare(b.dir) || (a.agent ?? '').localeCompare(b.agent ?? ''));
	return groups;
}

export function pageCount(total: number, size = PAGE_SIZE): number {
	return Math.max(1, Math.ceil(total / size));
}

/** Clamps a 0-based page index into range. */
export function clampPage(page: number, total: number, size = PAGE_SIZE): number {
	return Math.min(Math.max(0, Math.floor(page)), pageCount(total, size) - 1);
}

export function pageOf<T>(items: readonly T[], page: number, size = PAGE_SIZE): T[] {
	const p = clampPage(page, items.length, size);
	return items.slice(p * size, p * size + size);
}

/** `session_name`, else the working directory's basename, else `Session`. */
export function displayName(s: Pick<SessionRecord, 'session_name' | 'working_dir'> | null | undefined): string {
	const name = s?.session_name?.trim();
	if (name) return name;
	return basename(s?.working_dir ?? '') || 'Session';
}

/** The name "Branch" pre-fills, as the original: `<name> branch`, so branches stand out on the dashboard. */
export function branchName(s: Pick<SessionRecord, 'session_name' | 'working_dir'> | null | undefined): string {
	return `${displayName(s)} branch`;
}

/** The name "New from defaults" pre-fills, as the original: `<name> copy`. */
export function copyName(s: Pick<SessionRecord, 'session_name' | 'working_dir'> | null | undefined): string {
	return `${displayName(s)} copy`;
}

export function basename(path: string): string {
	const parts = path.replace(/\/+$/, '').split('/');
	return parts[parts.length - 1] ?? '';
}

/** The agent (machine) a session runs on, when the record says. */
export function agentLabel(s: Pick<SessionRecord, 'agent'>): string | null {
	const a = s.agent;
	if (!a) return null;
	if (typeof a === 'string') return a;
	return a.name || a.id || a.hostname || null;
}

/** The form's default provider: `openai-codex` if known, else the first provider, else empty. */
export function defaultProvider(models: readonly ModelInfo[]): string {
	const providers = providersOf(models);
	return providers.includes('openai-codex') ? 'openai-codex' : (providers[0] ?? '');
}

/** The form's default model for `provider`: `gpt-5.5` if available, else the provider's first model. */
export function defaultModel(models: readonly ModelInfo[], provider: string): string {
	const ids = modelsFor(models, provider).map((m) => m.id);
	return ids.includes('gpt-5.5') ? 'gpt-5.5' : (ids[0] ?? '');
}

export function providersOf(models: readonly ModelInfo[]): string[] {
	return [...new Set(models.map((m) => m.provider).filter(Boolean))];
}

export function modelsFor(models: readonly ModelInfo[], provider: string): ModelInfo[] {
	return provider ? models.filter((m) => m.provider === provider) : [...models];
}

export const THINKING_LEVELS = ['off', 'minimal', 'low', 'medium', 'high', 'xhigh'] as const;

const LEVEL_LABELS: Record<string, string> = { off: 'Off', minimal: 'Minimal', low: 'Low', medium: 'Medium', high: 'High', xhigh: 'XHigh' };

/** Display name of a thinking level. */
export function levelLabel(level: string): string {
	return LEVEL_LABELS[level] ?? level;
}
