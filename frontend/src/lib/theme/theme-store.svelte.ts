// The page-wide look: the stored mode and skin, the system preference, and a session page's temporary
// workspace override, applied to `<html>` whenever one of them changes. One instance for the app.

import { browserStorages } from '../persistence/storage';
import { apply, effective, loadMode, loadSkin, saveMode, saveSkin, type Mode, type Override, type Resolved, type Skin } from './theme';

class ThemeStore {
	mode = $state<Mode>('auto');
	skin = $state<Skin>('default');
	override = $state<Override | null>(null);
	prefersDark = $state(false);
	#started = false;

	/** What `<html>` shows now. */
	get look(): { theme: Resolved; skin: Skin } {
		return effective(this.mode, this.skin, this.prefersDark, this.override);
	}

	get dark(): boolean {
		return this.look.theme === 'dark';
	}

	start(): void {
		if (this.#started) return;
		this.#started = true;
		const s = browserStorages();
		this.mode = loadMode(s);
		this.skin = loadSkin(s);
		const mq = window.matchMedia?.('(prefers-color-scheme: dark)');
		this.prefersDark = mq?.matches ?? false;
		mq?.addEventListener?.('change', (e) => {
			this.prefersDark = e.matches;
			this.#apply();
		});
		this.#apply();
	}

	setMode(mode: Mode): void {
		this.mode = mode;
		saveMode(browserStorages(), mode);
		this.#apply();
	}

	setSkin(skin: Skin): void {
		this.skin = skin;
		saveSkin(browserStorages(), skin);
		this.#apply();
	}

	/** Forces a workspace's look while a session page is shown; `null` clears it. */
	setOverride(o: Override | null): void {
		this.override = o && (o.theme || o.skin) ? o : null;
		this.#apply();
	}

	#apply(): void {
		apply(document.documentElement, this.look);
	}
}

export const theme = new ThemeStore();
