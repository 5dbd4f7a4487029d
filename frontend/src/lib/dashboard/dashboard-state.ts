// The dashboard's data as a pure reducer over `/ws/dashboard` frames (api/protocol.ts `DashboardFrame`):
// a snapshot on every connect replaces everything, then sessions and agents are upserted or removed one by
// one. A REST load (`GET /api/sessions` + `/api/agents`, used before the socket's first snapshot and when
// the socket is unavailable) goes through the same `snapshot` path.
//
// Not here: the socket itself (dashboard-socket.svelte.ts), grouping and paging (grouping.ts).

import type { DashboardFrame } from '../api/protocol';
import type { AgentInfo, SessionRecord } from '../api/types';
import { agentLabel } from './grouping';

export interface DashboardState {
	/** Every record, in the server's order (creation order); an update keeps a record in place. */
	sessions: SessionRecord[];
	/** Every known agent; `removed` ones are dropped. */
	agents: AgentInfo[];
	/** A snapshot (socket or REST) has arrived: the lists are real, not merely empty. */
	loaded: boolean;
}

export const initialDashboard: DashboardState = Object.freeze({ sessions: [], agents: [], loaded: false }) as DashboardState;

/** Applies one frame. Unknown or malformed frames leave the state as it was (the same object). */
export function reduceDashboard(state: DashboardState, frame: DashboardFrame): DashboardState {
	switch (frame.type) {
		case 'piface_dashboard':
			return snapshot(frame.sessions, frame.agents);
		case 'piface_session':
			return isSession(frame.session) ? { ...state, sessions: upsert(state.sessions, frame.session, (s) => s.piface_id) } : state;
		case 'piface_session_removed': {
			const sessions = state.sessions.filter((s) => s.piface_id !== frame.piface_id);
			return sessions.length === state.sessions.length ? state : { ...state, sessions };
		}
		case 'piface_agent': {
			const a = frame.agent;
			if (!isAgent(a)) return state;
			if (a.status === 'removed') {
				const agents = state.agents.filter((x) => x.name !== a.name);
				return agents.length === state.agents.length ? state : { ...state, agents };
			}
			return { ...state, agents: upsert(state.agents, a, (x) => x.name) };
		}
		default:
			return state;
	}
}

/** A whole new state from lists (the socket's snapshot or a REST load); bad entries are skipped. */
export function snapshot(sessions: unknown, agents: unknown): DashboardState {
	return {
		sessions: Array.isArray(sessions) ? sessions.filter(isSession) : [],
		agents: Array.isArray(agents) ? agents.filter((a): a is AgentInfo => isAgent(a) && a.status !== 'removed') : [],
		loaded: true
	};
}

/** Parses a socket message; null for anything that is not a dashboard frame this UI knows. */
export function parseDashboardFrame(data: unknown): DashboardFrame | null {
	if (typeof data !== 'string') return null;
	let v: unknown;
	try {
		v = JSON.parse(data);
	} catch {
		return null;
	}
	if (!v || typeof v !== 'object') return null;
	const f = v as Record<string, unknown>;
	switch (f.type) {
		case 'piface_dashboard':
			return Array.isArray(f.sessions) ? (f as unknown as DashboardFrame) : null;
		case 'piface_session':
			return isSession(f.session) ? (f as unknown as DashboardFrame) : null;
		case 'piface_session_removed':
			return typeof f.piface_id === 'string' ? (f as unknown as DashboardFrame) : null;
		case 'piface_agent':
			return isAgent(f.agent) ? (f as unknown as DashboardFrame) : null;
		default:
			return null;
	}
}

/** Live sessions per agent name, counted from the records (the socket's agent updates do not carry it). */
export function liveByAgent(sessions: readonly SessionRecord[]): Map<string, number> {
	const out = new Map<string, number>();
	for (const s of sessions) {
		const agent = agentLabel(s);
		if (s.status !== 'live' || !agent) continue;
		out.set(agent, (out.get(agent) ?? 0) + 1);
	}
	return out;
}

/** The dashboard socket's URL for a page served from `loc` (`wss:` under `https:`). */
export function dashboardSocketUrl(loc: { protocol: string; host: string }): string {
	return `${loc.protocol === 'https:' ? 'wss:' : 'ws:'}//${loc.host}/ws/dashboard`;
}

function upsert<T>(list: readonly T[], item: T, key: (x: T) => string): T[] {
	const k = key(item);
	const i = list.findIndex((x) => key(x) === k);
	if (i < 0) return [...list, item];
	const out = list.slice();
	out[i] = item;
	return out;
}

function isSession(v: unknown): v is SessionRecord {
	return !!v && typeof v === 'object' && typeof (v as SessionRecord).piface_id === 'string' && typeof (v as SessionRecord).working_dir === 'string';
}

function isAgent(v: unknown): v is AgentInfo {
	return !!v && typeof v === 'object' && typeof (v as AgentInfo).name === 'string' && typeof (v as AgentInfo).status === 'string';
}

export type Health = 'checking' | 'online' | 'reconnecting' | 'unreachable';

/** The header's server badge: live while the socket is synced; before the socket ever synced, what
 * `/api/health` said; after, `reconnecting` (the socket retries on its own). */
export function healthOf(i: { synced: boolean; everSynced: boolean; checking: boolean; reachable: boolean }): Health {
	if (i.synced) return 'online';
	if (i.everSynced) return 'reconnecting';
	if (i.checking) return 'checking';
	return i.reachable ? 'online' : 'unreachable';
}
