// What this server can do beyond the basics, from `GET /api/health` (`{"status":"ok","speech":bool,"tts":bool}`;
// older servers send only `status`, which means neither). One request per page load, shared by every reader:
// the dashboard's health badge and the session view's Listen and Mic buttons.
//
// Use either `getCapabilities()` (a promise) or the `capabilities` store (`$capabilities` in a component; it
// starts as "nothing available, still checking" and fetches on first subscription). Not here: what a disabled
// button says; that is the view's business.

import { readable, type Readable } from 'svelte/store';
import { api } from './client';

export interface Capabilities {
	/** The server answered `status: "ok"`. */
	reachable: boolean;
	/** Still waiting for the first answer. */
	checking: boolean;
	/** Speech-to-text (`POST …/transcribe`) is configured. */
	speech: boolean;
	/** Text-to-speech (`POST …/tts`) is configured. */
	tts: boolean;
}

/** Before the first answer: nothing is offered yet. */
export const CHECKING: Capabilities = Object.freeze({ reachable: false, checking: true, speech: false, tts: false });

/** When the server cannot be reached. */
export const UNREACHABLE: Capabilities = Object.freeze({ reachable: false, checking: false, speech: false, tts: false });

/** Reads a health body leniently: only a literal `true` turns a feature on. */
export function parseCapabilities(body: unknown): Capabilities {
	if (!body || typeof body !== 'object') return UNREACHABLE;
	const b = body as Record<string, unknown>;
	return { reachable: b.status === 'ok', checking: false, speech: b.speech === true, tts: b.tts === true };
}

type Fetcher = () => Promise<unknown>;

/** A cached loader; `fetcher` is injectable for specs. A failed request is not cached, so the next call retries. */
export function capabilityLoader(fetcher: Fetcher = api.health) {
	let pending: Promise<Capabilities> | null = null;
	return (opts: { refresh?: boolean } = {}): Promise<Capabilities> => {
		if (!pending || opts.refresh) {
			const p = fetcher().then(parseCapabilities, () => {
				if (pending === p) pending = null;
				return UNREACHABLE;
			});
			pending = p;
		}
		return pending;
	};
}

/** The page's shared loader: `getCapabilities()` fetches once; `{ refresh: true }` asks again. */
export const getCapabilities = capabilityLoader();

/** The capabilities as a store; the first subscriber triggers the (shared) request. */
export const capabilities: Readable<Capabilities> = readable<Capabilities>(CHECKING, (set) => {
	let active = true;
	void getCapabilities().then((c) => active && set(c));
	return () => {
		active = false;
	};
});
