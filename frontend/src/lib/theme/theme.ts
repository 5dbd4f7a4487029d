// Theme mode (auto/light/dark) and skin resolution (ui.md §1): stored preferences, validation, the
// per-workspace override of a session page, and what to put on `<html>`. The DOM writes are in `apply`,
// which takes the element, so everything else runs in specs. `src/app.html` repeats the read-and-apply
// part inline so the first paint already has the right colours; keep the two in step.

import { readPreference, writePreference, type Storages } from '../persistence/storage';

export const MODE_KEY = 'piface.theme.mode';
export const SKIN_KEY = 'piface.theme.skin';

export const MODES = ['auto', 'light', 'dark'] as const;
export type Mode = (typeof MODES)[number];
export type Resolved = 'light' | 'dark';

/** The twelve skins of the original, with their display names. */
export const SKINS = [
	['default', 'Default'],
	['beos', 'BeOS Classic'],
	['facebook2007', 'Facebook 2007'],
	['nintendo', 'Nintendo (Game Boy)'],
	['nintendo-nes', 'Nintendo NES'],
	['windows98', 'Windows 98'],
	['macos8', 'Mac OS 8'],
	['winamp', 'Winamp'],
	['protoss', 'StarCraft: Protoss'],
	['terran', 'StarCraft: Terran'],
	['zerg', 'StarCraft: Zerg'],
	['synthwave', 'Synthwave']
] as const;
export type Skin = (typeof SKINS)[number][0];

export function isMode(v: unknown): v is Mode {
	return typeof v === 'string' && (MODES as readonly string[]).includes(v);
}

export function isSkin(v: unknown): v is Skin {
	return typeof v === 'string' && SKINS.some(([name]) => name === v);
}

export function skinLabel(skin: string): string {
	return SKINS.find(([name]) => name === skin)?.[1] ?? skin;
}

/** The stored mode; invalid or missing → `auto`. */
export function loadMode(s: Storages): Mode {
	const v = readPreference(s, MODE_KEY);
	return isMode(v) ? v : 'auto';
}

/** The stored skin; invalid or missing → `default`. */
export function loadSkin(s: Storages): Skin {
	const v = readPreference(s, SKIN_KEY);
	return isSkin(v) ? v : 'default';
}

export function saveMode(s: Storages, mode: Mode): boolean {
	return writePreference(s, MODE_KEY, mode);
}

export function saveSkin(s: Storages, skin: Skin): boolean {
	return writePreference(s, SKIN_KEY, skin);
}

/** `auto` follows the system preference. */
export function resolveMode(mode: Mode, prefersDark: boolean): Resolved {
	return mode === 'auto' ? (prefersDark ? 'dark' : 'light') : mode;
}

/** A session page's temporary override from its workspace config (either part may be absent). */
export interface Override {
	theme?: string | null;
	skin?: string | null;
}

/** What `<html>` shows: the override where valid, else the preference. */
export function effective(mode: Mode, skin: Skin, prefersDark: boolean, override: Override | null): { theme: Resolved; skin: Skin } {
	const theme = override?.theme === 'light' || override?.theme === 'dark' ? override.theme : resolveMode(mode, prefersDark);
	return { theme, skin: isSkin(override?.skin) ? override.skin : skin };
}

/** Sets `data-theme`, `data-skin` and `color-scheme` on the root element. */
export function apply(root: HTMLElement, look: { theme: Resolved; skin: Skin }): void {
	root.dataset.theme = look.theme;
	root.dataset.skin = look.skin;
	root.style.colorScheme = look.theme;
}
