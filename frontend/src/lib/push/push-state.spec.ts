// The browser's Web Push state against fakes of the browser (permission, pushManager) and of the coordinator's
// subscription API: turning on and off, mutes, renewal at start, and what each refusal says.

import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import type { PushSubscriptionInfo } from './notification';
import { PushState, type PushDeps, type PushSupport } from './push-state.svelte';

/** A browser subscription as `pushManager` hands one out. */
class FakeSubscription {
	unsubscribed = false;
	constructor(readonly endpoint: string) {}
	toJSON(): PushSubscriptionJSON {
		return { endpoint: this.endpoint, expirationTime: null, keys: { p256dh: 'BPkey', auth: 'authkey' } };
	}
	async unsubscribe() {
		this.unsubscribed = true;
		return true;
	}
}

function fakes(opts: { support?: PushSupport; permission?: NotificationPermission; answer?: NotificationPermission; existing?: boolean } = {}) {
	const log: string[] = [];
	let sub: FakeSubscription | null = opts.existing ? new FakeSubscription('https://push.example/old') : null;
	let server: PushSubscriptionInfo | null = null;
	let permission = opts.permission ?? 'default';
	const manager = {
		getSubscription: async () => sub,
		subscribe: async (o: PushSubscriptionOptionsInit) => {
			log.push(`subscribe ${o.userVisibleOnly} ${(o.applicationServerKey as Uint8Array).length}`);
			sub = new FakeSubscription('https://push.example/new');
			return sub;
		}
	} as unknown as PushManager;
	const deps: PushDeps = {
		support: () => opts.support ?? 'ok',
		permission: () => permission,
		requestPermission: async () => {
			log.push('ask');
			permission = opts.answer ?? 'granted';
			return permission;
		},
		pushManager: async () => manager,
		// 65 bytes, base64url.
		key: async () => 'B' + 'A'.repeat(86),
		register: async (body) => {
			log.push(`register ${body.endpoint} ${body.keys.p256dh} ${body.keys.auth}`);
			server = { id: 'id1', endpoint: body.endpoint, created_at: 't', muted: server?.muted ?? false, muted_sessions: server?.muted_sessions ?? [] };
			return server;
		},
		change: async (id, body) => {
			log.push(`change ${id} ${JSON.stringify(body)}`);
			if (!server) throw new ApiError(404, 'Subscription not found');
			const muted_sessions = server.muted_sessions.filter((s) => !(body.sessions && s in body.sessions));
			for (const [s, m] of Object.entries(body.sessions ?? {})) if (m) muted_sessions.push(s);
			server = { ...server, muted: body.muted ?? server.muted, muted_sessions };
			return server;
		},
		remove: async (id) => {
			log.push(`remove ${id}`);
			if (!server) throw new ApiError(404, 'Subscription not found');
			server = null;
		},
		test: async (id) => {
			log.push(`test ${id}`);
			return 201;
		}
	};
	return { deps, log, sub: () => sub, forget: () => (server = null) };
}

describe('PushState', () => {
	it('turns on: permission, a subscription with the key, registration; then mutes and tests', async () => {
		const f = fakes();
		const s = new PushState(f.deps);
		await s.start();
		expect([s.support, s.permission, s.info, s.on]).toEqual(['ok', 'default', null, false]);
		await s.enable();
		expect(s.error).toBeNull();
		expect(f.log).toEqual(['ask', 'subscribe true 65', 'register https://push.example/new BPkey authkey']);
		expect(s.on && s.notifies('a')).toBe(true);
		await s.setSessionMuted('a', true);
		expect([s.notifies('a'), s.notifies('b')]).toEqual([false, true]);
		await s.setMuted(true);
		expect([s.on, s.notifies('b')]).toEqual([false, false]);
		await s.setMuted(false);
		await s.setSessionMuted('a', false);
		expect(s.notifies('a')).toBe(true);
		expect(await s.test()).toBe(201);
	});

	it('registers an existing subscription again at start (once), keeping the server-side mutes', async () => {
		const f = fakes({ permission: 'granted', existing: true });
		const s = new PushState(f.deps);
		await Promise.all([s.start(), s.start()]);
		expect(f.log).toEqual(['register https://push.example/old BPkey authkey']);
		expect(s.on).toBe(true);
	});

	it('turns off: the coordinator forgets it and the browser unsubscribes, even when the coordinator had already', async () => {
		const f = fakes();
		const s = new PushState(f.deps);
		await s.enable();
		f.forget(); // its push service said it was gone
		await s.disable();
		expect(s.error).toBeNull();
		expect(s.info).toBeNull();
		expect(f.sub()?.unsubscribed).toBe(true);
	});

	it('says why it cannot: denied, not allowed, no HTTPS, no support', async () => {
		const denied = new PushState(fakes({ answer: 'denied' }).deps);
		await denied.enable();
		expect(denied.error).toMatch(/blocked for this site/);
		expect(denied.info).toBeNull();
		const dismissed = new PushState(fakes({ answer: 'default' }).deps);
		await dismissed.enable();
		expect(dismissed.error).toBe('Notifications were not allowed');
		for (const support of ['insecure', 'unsupported'] as const) {
			const f = fakes({ support, permission: 'granted', existing: true });
			const s = new PushState(f.deps);
			await s.start();
			expect(s.support).toBe(support);
			expect(f.log).toEqual([]);
		}
	});
});
