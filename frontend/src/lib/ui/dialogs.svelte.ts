// In-app modal dialogs as promises (`ask`, `prompt`), rendered by `DialogHost.svelte` in the root layout.
// Used instead of `window.confirm` so dialogs match the skin, work in fullscreen web apps and can be
// answered by keyboard.

export interface AskOptions {
	title: string;
	message?: string;
	confirmLabel?: string;
	cancelLabel?: string;
	danger?: boolean;
	/** Ask for a line of text (the promise resolves to it, or null when cancelled). */
	input?: { label: string; value?: string; placeholder?: string };
}

interface Pending extends AskOptions {
	id: number;
	resolve: (v: string | boolean | null) => void;
}

class Dialogs {
	queue = $state<Pending[]>([]);
	#next = 1;

	#open(opts: AskOptions): Promise<string | boolean | null> {
		return new Promise((resolve) => {
			this.queue = [...this.queue, { ...opts, id: this.#next++, resolve }];
		});
	}

	/** A yes/no question. */
	async ask(opts: Omit<AskOptions, 'input'>): Promise<boolean> {
		return (await this.#open(opts)) === true;
	}

	/** A question with a text field; null when cancelled. */
	async prompt(opts: AskOptions & { input: NonNullable<AskOptions['input']> }): Promise<string | null> {
		const v = await this.#open(opts);
		return typeof v === 'string' ? v : null;
	}

	answer(id: number, value: string | boolean | null): void {
		const d = this.queue.find((x) => x.id === id);
		this.queue = this.queue.filter((x) => x.id !== id);
		d?.resolve(value);
	}
}

export const dialogs = new Dialogs();

/** The direnv question of create/resume: allow the blocked `.envrc` and retry? */
export function confirmDirenvAllow(detail: string): Promise<boolean> {
	return dialogs.ask({
		title: 'Allow .envrc?',
		message: `${detail}\n\nAllow this directory's .envrc (direnv allow) and try again?`,
		confirmLabel: 'Allow and retry'
	});
}
