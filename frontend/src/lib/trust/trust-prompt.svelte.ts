// The workspace-trust question as a promise (`trustPrompt.ask(info)`), rendered by TrustDialogHost.svelte
// in the root layout, and the API wiring of trust.ts's loop (`trustDeps`).

import { api } from '../api/client';
import type { TrustDeps, WorkspaceTrustInfo } from './trust';

interface Pending {
	id: number;
	info: WorkspaceTrustInfo;
	resolve: (trusted: boolean) => void;
}

class TrustPrompt {
	queue = $state<Pending[]>([]);
	#next = 1;

	/** Shows the commands of `info`; true when the user chose to trust them. */
	ask(info: WorkspaceTrustInfo): Promise<boolean> {
		return new Promise((resolve) => {
			this.queue = [...this.queue, { id: this.#next++, info, resolve }];
		});
	}

	answer(id: number, trusted: boolean): void {
		const p = this.queue.find((x) => x.id === id);
		this.queue = this.queue.filter((x) => x.id !== id);
		p?.resolve(trusted);
	}
}

export const trustPrompt = new TrustPrompt();

/** trust.ts's loop against the real API and dialog. */
export const trustDeps: TrustDeps = {
	info: (path, agent) => api.workspaceTrust(path, agent),
	trust: (path, sha256, agent) => api.trustWorkspace(path, sha256, agent),
	confirm: (info) => trustPrompt.ask(info)
};
