// The dashboard's WebSocket (`/ws/dashboard`): exposes its status as `$state` and hands parsed frames to the
// page, over a `ReconnectingSocket` (connection/reconnecting-socket.ts: backoff, lifecycle reconnects, a dead
// socket dropped on offline, cleanup). No close code is final: the dashboard is always "live". Every
// connection starts with a snapshot, so a reconnect needs no resume logic.
//
// Not here: what frames mean (dashboard-state.ts).

import type { DashboardFrame } from '../api/protocol';
import { ReconnectingSocket } from '../connection/reconnecting-socket';
import { dashboardSocketUrl, parseDashboardFrame } from './dashboard-state';

export type DashboardSocketStatus = 'idle' | 'connecting' | 'open' | 'closed';

export class DashboardSocket {
	/** Connection status, for the UI. */
	status = $state<DashboardSocketStatus>('idle');
	/** The current connection has delivered its snapshot: the page's data is live. */
	synced = $state(false);

	readonly #socket: ReconnectingSocket;

	constructor(
		private readonly onframe: (frame: DashboardFrame) => void
	) {
		this.#socket = new ReconnectingSocket(
			{
				url: () => dashboardSocketUrl(location),
				message: (data) => {
					const frame = parseDashboardFrame(data);
					if (!frame) return;
					if (frame.type === 'piface_dashboard') this.synced = true;
					this.onframe(frame);
				},
				change: (s) => {
					this.status = s === 'idle' || s === 'connecting' || s === 'open' ? s : 'closed';
					// Only a snapshot on the connection now open makes the data live again.
					if (s !== 'open') this.synced = false;
				}
			}
		);
	}

	get connected(): boolean {
		return this.status === 'open';
	}

	/** Opens the socket and starts following page lifecycle events; a second call does nothing. */
	start(): void {
		this.#socket.start();
	}

	/** Closes the socket for good (leaving the page). */
	stop(): void {
		this.#socket.stop();
	}
}
