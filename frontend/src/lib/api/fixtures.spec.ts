// The golden fixtures of every frame the coordinator sends to browsers (fixtures/browser/, one JSON document
// per file, which `cargo test` compares byte for byte with what coordinator/src/frames.rs writes; see
// coordinator/src/frames/tests.rs). Here, the UI's side of the same files:
//
// - every file's keys, and those of the records inside (session, agent, GPU, `!!` output, patch operations),
//   are the key lists of api/protocol.ts and api/types.ts, names and order;
// - every frame goes through the socket that receives it (over connection/fake-browser.ts) and the code the
//   page hands it to (the chat reducer, the session record, the dashboard reducer), with its effect asserted;
// - a fixture of a kind the UI does not list fails, and so does a listed kind without a fixture;
// - what the UI itself sends (client/): the session socket writes each browser frame byte for byte as the
//   fixture, which the coordinator's test reads back;
// - a Web Push's payload (push/): read by the service worker's parser and shown as its notification.
//
// `PIFACE_BROWSER_FIXTURES` points the spec at another copy of the folder (to check that it fails on a
// changed one). Not here: the frames pi writes, which the coordinator relays unchanged.

import { existsSync, readdirSync, readFileSync } from 'node:fs';
import { join } from 'node:path';
import { fileURLToPath } from 'node:url';
import { afterEach, beforeEach, describe, expect, it, vi } from 'vitest';
import { bashText } from '../chat/message-text';
import { initialChat, messagesOf, reduce, type ChatState } from '../chat/reducer';
import { installFakeBrowser, type FakeBrowser } from '../connection/fake-browser';
import { SessionSocket } from '../connection/session-socket.svelte';
import { DashboardSocket } from '../dashboard/dashboard-socket.svelte';
import { initialDashboard, reduceDashboard, snapshot, type DashboardState } from '../dashboard/dashboard-state';
import { sessionStateRecord } from '../session/session-state';
import { notificationOptions, notificationTarget, parsePushPayload } from '../push/notification';
import {
	BROWSER_FRAME_KEYS,
	DASHBOARD_FRAME_KEYS,
	PUSH_NOTIFICATION_KEYS,
	PATCH_OP_KEYS,
	SESSION_FRAME_KEYS,
	SHELL_DATA_KEYS,
	type DashboardFrame,
	type PatchOpKind,
	type PiMessage,
	type ServerFrame,
	type SessionFrameType
} from './protocol';
import { AGENT_INFO_KEYS, GPU_INFO_KEYS, SESSION_RECORD_KEYS, type AgentInfo, type SessionRecord } from './types';

type Socket = 'session' | 'dashboard' | 'client' | 'push';
type Json = Record<string, unknown>;

const ROOT = process.env.PIFACE_BROWSER_FIXTURES ?? fileURLToPath(new URL('../../../../fixtures/browser/', import.meta.url));

/** A fixture file: its name, its text as written and the document in it. */
interface Fixture {
	name: string;
	text: string;
	json: Json;
}

/** Every fixture of one socket's folder, by file name. Throws (failing the whole spec file) when the folder is
 * missing or empty, or a file is not one JSON object and a newline. */
function load(socket: Socket): Map<string, Fixture> {
	const dir = join(ROOT, socket);
	const regen = 'cargo test -p piface-coordinator --lib frames writes it (PIFACE_BLESS=1)';
	if (!existsSync(dir)) throw new Error(`${dir}: no golden fixtures folder; ${regen}`);
	const names = readdirSync(dir).filter((n) => n.endsWith('.json')).sort();
	if (names.length === 0) throw new Error(`${dir}: no golden fixtures in the folder; ${regen}`);
	const out = new Map<string, Fixture>();
	for (const name of names) {
		const text = readFileSync(join(dir, name), 'utf8');
		if (!text.endsWith('}\n') || text.slice(0, -1).includes('\n')) throw new Error(`${socket}/${name}: not one line of JSON and a newline`);
		const json: unknown = JSON.parse(text);
		if (!json || typeof json !== 'object' || Array.isArray(json)) throw new Error(`${socket}/${name}: not a JSON object`);
		out.set(name, { name, text: text.slice(0, -1), json: json as Json });
	}
	return out;
}

const FIXTURES: Record<Socket, Map<string, Fixture>> = {
	session: load('session'),
	dashboard: load('dashboard'),
	client: load('client'),
	push: load('push')
};

/** The files that are not frames but a frame's companions: what a patch applies to, and what it makes. */
const COMPANION = /\.(base|after)\.json$/;

/** The frames of a socket's folder (`<type>.json` and variants `<type>.<variant>.json`). */
function frames(socket: Socket): Fixture[] {
	return [...FIXTURES[socket].values()].filter((f) => !COMPANION.test(f.name));
}

function fixture(socket: Socket, name: string): Fixture {
	const f = FIXTURES[socket].get(name);
	if (!f) throw new Error(`no fixture ${socket}/${name}`);
	return f;
}

function companion(socket: Socket, frame: string, which: 'base' | 'after'): Json {
	return fixture(socket, frame.replace(/\.json$/, `.${which}.json`)).json;
}

/** The frames of one kind (its file and its variants). */
function ofType(socket: Socket, type: string): Fixture[] {
	const out = frames(socket).filter((f) => f.json.type === type);
	if (out.length === 0) throw new Error(`no ${socket} fixture of type ${type}`);
	return out;
}

function isKnown<K extends string>(lists: Record<K, unknown>, type: unknown): type is K {
	return typeof type === 'string' && Object.hasOwn(lists, type);
}

/** Where in a frame, its keys in the fixture's order, and the UI's list for them. */
type Shape = [where: string, keys: string[], expected: readonly string[]];

function keys(v: unknown, where: string): string[] {
	if (!v || typeof v !== 'object' || Array.isArray(v)) throw new Error(`${where} is not an object`);
	return Object.keys(v);
}

function list(v: unknown, where: string): unknown[] {
	if (!Array.isArray(v)) throw new Error(`${where} is not a list`);
	return v;
}

function recordShapes(v: unknown, where: string): Shape[] {
	return [[where, keys(v, where), SESSION_RECORD_KEYS]];
}

function agentShapes(v: unknown, where: string): Shape[] {
	const out: Shape[] = [[where, keys(v, where), AGENT_INFO_KEYS]];
	list((v as Json).gpus, `${where}.gpus`).forEach((g, i) => out.push([`${where}.gpus[${i}]`, keys(g, `${where}.gpus[${i}]`), GPU_INFO_KEYS]));
	return out;
}

function sessionShapes(f: Json): Shape[] {
	const type = f.type;
	if (!isKnown(SESSION_FRAME_KEYS, type)) throw new Error(`frame type ${String(type)} is not in SESSION_FRAME_KEYS (api/protocol.ts)`);
	let expected: readonly string[] = SESSION_FRAME_KEYS[type];
	// `data` on success, `error` on failure: the list has both, a frame one.
	if (type === 'response') expected = expected.filter((k) => k !== (f.success === true ? 'error' : 'data'));
	const out: Shape[] = [['the frame', Object.keys(f), expected]];
	if (type === 'piface_session_state') out.push(...recordShapes(f.session, 'session'));
	if (type === 'response' && f.success === true) out.push(['data', keys(f.data, 'data'), SHELL_DATA_KEYS]);
	if (type === 'message_update') {
		list(f.piface_patch, 'piface_patch').forEach((op, i) => {
			const where = `piface_patch[${i}]`;
			const kind = (['append', 'set', 'delete'] as const satisfies readonly PatchOpKind[]).find((k) => Object.hasOwn(op as Json, k));
			if (!kind) throw new Error(`${where} is no append, set or delete`);
			out.push([where, keys(op, where), PATCH_OP_KEYS[kind]]);
		});
	}
	return out;
}

function dashboardShapes(f: Json): Shape[] {
	const type = f.type;
	if (!isKnown(DASHBOARD_FRAME_KEYS, type)) throw new Error(`frame type ${String(type)} is not in DASHBOARD_FRAME_KEYS (api/protocol.ts)`);
	const out: Shape[] = [['the frame', Object.keys(f), DASHBOARD_FRAME_KEYS[type]]];
	if (type === 'piface_dashboard') {
		list(f.sessions, 'sessions').forEach((s, i) => out.push(...recordShapes(s, `sessions[${i}]`)));
		list(f.agents, 'agents').forEach((a, i) => out.push(...agentShapes(a, `agents[${i}]`)));
	}
	if (type === 'piface_session') out.push(...recordShapes(f.session, 'session'));
	if (type === 'piface_agent') out.push(...agentShapes(f.agent, 'agent'));
	return out;
}

/** Fails naming every place whose keys differ from the UI's list. */
function expectShapes(shapes: Shape[]): void {
	const wrong = shapes.filter(([, have, want]) => have.join() !== want.join()).map(([where, have, want]) => `${where}:\n  fixture ${have.join(', ')}\n  UI      ${want.join(', ')}`);
	expect(wrong, `keys differ from the UI's key lists:\n${wrong.join('\n')}`).toEqual([]);
}

/** Every kind named in `lists` has a fixture, and every fixture's type is one of them. */
function expectKinds(socket: Socket, lists: Record<string, unknown>, listName: string): void {
	const unknown = frames(socket)
		.filter((f) => !isKnown(lists, f.json.type))
		.map((f) => `${socket}/${f.name} (type ${JSON.stringify(f.json.type)}) is not in ${listName}: teach the UI this frame`);
	expect(unknown, unknown.join('\n')).toEqual([]);
	const types = new Set(frames(socket).map((f) => f.json.type));
	const missing = Object.keys(lists).filter((t) => !types.has(t));
	expect(missing, `kinds in ${listName} without a fixture in ${socket}/: ${missing.join(', ')}`).toEqual([]);
	// A variant's name starts with its type, so a file tells what it holds.
	const misnamed = frames(socket)
		.filter((f) => f.name.split('.')[0] !== f.json.type)
		.map((f) => f.name);
	expect(misnamed, 'fixtures named after another type').toEqual([]);
	const orphans = [...FIXTURES[socket].keys()].filter((n) => COMPANION.test(n) && !FIXTURES[socket].has(n.replace(COMPANION, '.json')));
	expect(orphans, 'companions without their frame').toEqual([]);
}

// ----- the sockets, as the pages use them -----

let browser: FakeBrowser;

beforeEach(() => {
	vi.useFakeTimers();
	browser = installFakeBrowser();
});

afterEach(() => {
	vi.useRealTimers();
	vi.unstubAllGlobals();
});

/** What a session page makes of `texts` arriving on its socket: the record of the last `piface_session_state`
 * (SessionView's `onFrame`) and the chat, which reduces every other frame. */
interface SessionPage {
	record: SessionRecord | null;
	chat: ChatState;
	frames: ServerFrame[];
}

function sessionPage(texts: string[], chat: ChatState = initialChat()): SessionPage {
	const page: SessionPage = { record: null, chat, frames: [] };
	const socket = new SessionSocket('3f2b', {
		frame: (frame) => {
			page.frames.push(frame);
			if (frame.type === 'piface_session_state') {
				page.record = sessionStateRecord(frame) ?? page.record;
				return;
			}
			page.chat = reduce(page.chat, frame);
		}
	});
	socket.start();
	const ws = browser.last();
	ws.open();
	for (const t of texts) ws.receive(t);
	socket.stop();
	expect(page.frames, 'the session socket dropped a frame').toHaveLength(texts.length);
	return page;
}

/** What the dashboard makes of `texts` arriving on its socket (the page reduces every frame). */
function dashboardPage(texts: string[], state: DashboardState = initialDashboard): DashboardState {
	const seen: DashboardFrame[] = [];
	const socket = new DashboardSocket((frame) => {
		seen.push(frame);
		state = reduceDashboard(state, frame);
	});
	socket.start();
	const ws = browser.last();
	ws.open();
	for (const t of texts) ws.receive(t);
	socket.stop();
	expect(seen, 'the dashboard socket dropped a frame (dashboard-state.ts parseDashboardFrame)').toHaveLength(texts.length);
	return state;
}

// ----- what each frame does -----

/** One check per kind the coordinator writes to a session's socket; TypeScript wants one for each kind. */
const SESSION_EFFECTS: { [T in SessionFrameType]: (f: Fixture) => void } = {
	piface_session_state(f) {
		const session = f.json.session as SessionRecord;
		const page = sessionPage([f.text]);
		expect(page.record).toEqual(session);
		expect(['live', 'closed']).toContain(session.status);
		expect(['shared', 'git_worktree']).toContain(session.workspace_mode);
		expect(typeof session.agent).toBe('string');
	},
	piface_error(f) {
		const page = sessionPage([f.text]);
		expect(page.chat.error).toBe(f.json.message);
		expect(page.chat.error).toBeTruthy();
	},
	piface_replay(f) {
		const messages = f.json.messages as PiMessage[];
		expect(messages.length).toBeGreaterThan(0);
		const page = sessionPage([f.text]);
		expect(page.chat.replayed).toBe(true);
		expect(messagesOf(page.chat)).toEqual(messages);
	},
	piface_attention_required(f) {
		const page = sessionPage([f.text]);
		expect(page.chat.dialogs).toEqual([f.json.request]);
		// It asks about the session of the session-state fixture, the page's own.
		expect(f.json.session_id).toBe((fixture('session', 'piface_session_state.json').json.session as SessionRecord).piface_id);
	},
	response(f) {
		const page = sessionPage([f.text]);
		const shown = messagesOf(page.chat);
		expect(shown).toHaveLength(1);
		const m = shown[0]!;
		expect(f.json.command).toBe('bash');
		if (f.json.success === true) {
			const d = f.json.data as Json;
			// Shown as pi's `bashExecution` messages are (what a `!` command becomes), out of pi's context.
			expect(m).toEqual({
				role: 'bashExecution',
				command: d.command,
				output: d.output,
				exitCode: d.exitCode,
				cancelled: d.cancelled,
				truncated: d.truncated,
				excludeFromContext: true
			});
			expect(bashText(m)).toBe(`$ ${d.command}\n${d.output}\n(excluded from model context)`);
			// pi never replays it, so a replay keeps it.
			const replay = fixture('session', 'piface_replay.json');
			const after = sessionPage([replay.text], page.chat);
			expect(messagesOf(after.chat)).toEqual([m, ...(replay.json.messages as PiMessage[])]);
		} else {
			expect(m).toMatchObject({ role: 'bashExecution', output: f.json.error, exitCode: null, failed: true });
			expect(f.json.error).toBeTruthy();
		}
	},
	message_update(f) {
		const base = companion('session', f.name, 'base') as PiMessage;
		const after = companion('session', f.name, 'after');
		// The client holds `base` from a full update (the server's first one on every connection).
		const full = JSON.stringify({ type: 'message_update', message: base });
		const page = sessionPage([full, f.text]);
		expect(page.chat.resync).toBe(false);
		expect(page.chat.live).toEqual(after);
		expect(page.chat.live).not.toEqual(base);
		expect(page.chat.working.phase).toBe('responding');
	}
};

/** One check per dashboard frame kind. */
const DASHBOARD_EFFECTS: { [T in DashboardFrame['type']]: (f: Fixture) => void } = {
	piface_dashboard(f) {
		const s = dashboardPage([f.text]);
		expect(s.loaded).toBe(true);
		expect(s.sessions).toEqual(f.json.sessions);
		expect(s.agents).toEqual(f.json.agents);
		expect(s.sessions.length).toBeGreaterThan(0);
		expect(s.agents.length).toBeGreaterThan(0);
	},
	piface_session(f) {
		const session = f.json.session as SessionRecord;
		// New: appended; changed: replaced in place.
		expect(dashboardPage([f.text], snapshot([], [])).sessions).toEqual([session]);
		const old = { ...session, session_name: 'before', status: 'closed' as const };
		const other = { ...session, piface_id: 'other' };
		expect(dashboardPage([f.text], snapshot([old, other], [])).sessions).toEqual([session, other]);
	},
	piface_session_removed(f) {
		const snap = fixture('dashboard', 'piface_dashboard.json').json.sessions as SessionRecord[];
		// It names a session of the snapshot fixture, which goes.
		expect(snap.map((s) => s.piface_id)).toContain(f.json.piface_id);
		const s = dashboardPage([f.text], snapshot(snap, []));
		expect(s.sessions).toEqual(snap.filter((x) => x.piface_id !== f.json.piface_id));
	},
	piface_agent(f) {
		const agent = f.json.agent as AgentInfo;
		expect(['up', 'down', 'removed']).toContain(agent.status);
		expect(dashboardPage([f.text], snapshot([], [])).agents).toEqual(agent.status === 'removed' ? [] : [agent]);
		const old = { ...agent, status: 'down' as const, last_seen: 'before' };
		const other = { ...agent, name: 'other' };
		expect(dashboardPage([f.text], snapshot([], [old, other])).agents).toEqual(agent.status === 'removed' ? [other] : [agent, other]);
		// The same agent, removed: it goes.
		const removed = JSON.stringify({ ...f.json, agent: { ...agent, status: 'removed' } });
		expect(dashboardPage([removed], snapshot([], [agent, other])).agents).toEqual([other]);
	}
};

const names = (socket: Socket) => frames(socket).map((f) => f.name);

describe('fixtures/browser/session', () => {
	it('has a fixture of every kind in SESSION_FRAME_KEYS, and no other kind', () => {
		expectKinds('session', SESSION_FRAME_KEYS, 'SESSION_FRAME_KEYS (api/protocol.ts)');
	});

	it.each(names('session'))('%s has the keys the UI expects, in order', (name) => {
		expectShapes(sessionShapes(fixture('session', name).json));
	});

	it.each(names('session'))('%s does what the session page shows', (name) => {
		const f = fixture('session', name);
		const type = f.json.type;
		if (!isKnown(SESSION_EFFECTS, type)) throw new Error(`${name}: the UI does not know frames of type ${String(type)}`);
		SESSION_EFFECTS[type](f);
	});

	it('has both a successful and a failed `!!` response', () => {
		expect(ofType('session', 'response').map((f) => f.json.success).sort()).toEqual([false, true]);
	});
});

describe('fixtures/browser/dashboard', () => {
	it('has a fixture of every kind in DASHBOARD_FRAME_KEYS, and no other kind', () => {
		expectKinds('dashboard', DASHBOARD_FRAME_KEYS, 'DASHBOARD_FRAME_KEYS (api/protocol.ts)');
	});

	it.each(names('dashboard'))('%s has the keys the UI expects, in order', (name) => {
		expectShapes(dashboardShapes(fixture('dashboard', name).json));
	});

	it.each(names('dashboard'))('%s does what the dashboard shows', (name) => {
		const f = fixture('dashboard', name);
		const type = f.json.type;
		if (!isKnown(DASHBOARD_EFFECTS, type)) throw new Error(`${name}: the UI does not know frames of type ${String(type)}`);
		DASHBOARD_EFFECTS[type](f);
	});
});

describe('fixtures/browser/client', () => {
	it('has a fixture of every kind in BROWSER_FRAME_KEYS, and no other kind', () => {
		expectKinds('client', BROWSER_FRAME_KEYS, 'BROWSER_FRAME_KEYS (api/protocol.ts)');
	});

	it.each(names('client'))('%s has the keys the UI writes, in order', (name) => {
		const f = fixture('client', name);
		const type = f.json.type;
		if (!isKnown(BROWSER_FRAME_KEYS, type)) throw new Error(`${name}: the UI does not know frames of type ${String(type)}`);
		expectShapes([['the frame', Object.keys(f.json), BROWSER_FRAME_KEYS[type]]]);
	});

	it('piface_visibility is what the session socket sends, byte for byte', () => {
		const f = fixture('client', 'piface_visibility.json');
		const socket = new SessionSocket('3f2b', { frame: () => {} });
		browser.setVisible(f.json.visible === true);
		socket.start();
		const ws = browser.last();
		ws.open();
		browser.setVisible(f.json.visible !== true);
		browser.setVisible(f.json.visible === true);
		socket.stop();
		expect(ws.sent[0]).toBe(f.text);
		expect(ws.sent.at(-1)).toBe(f.text);
	});
});

describe('fixtures/browser/push', () => {
	it('has a payload of a session and of an agent, each with the keys the UI expects', () => {
		expect(frames('push').map((f) => f.name)).toEqual(['piface_notification.agent_down.json', 'piface_notification.json']);
		for (const f of frames('push')) {
			expect(f.json.type).toBe('piface_notification');
			expectShapes([[f.name, Object.keys(f.json), PUSH_NOTIFICATION_KEYS]]);
		}
	});

	it.each(names('push'))('%s is shown by the service worker and a tap opens its page', (name) => {
		const f = fixture('push', name);
		const n = parsePushPayload(f.text);
		expect(n).toEqual(f.json);
		const { title, options } = notificationOptions(n!);
		expect(title).toBe(f.json.title);
		expect(options.body).toBe(f.json.body);
		expect(options.tag).toBe(f.json.tag);
		expect(notificationTarget(options.data)).toBe(f.json.url);
		if (f.json.session_id) expect(f.json.url).toBe(`/session/${f.json.session_id}`);
	});
});
