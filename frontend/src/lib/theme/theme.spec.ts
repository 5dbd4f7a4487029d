import { describe, expect, it } from 'vitest';
import { MemoryStorage } from '../persistence/storage';
import { effective, isSkin, loadMode, loadSkin, MODE_KEY, resolveMode, saveMode, saveSkin, SKIN_KEY, SKINS, skinLabel } from './theme';

const storages = () => ({ local: new MemoryStorage(), session: new MemoryStorage() });

describe('theme mode', () => {
	it('defaults to auto and rejects invalid values', () => {
		const s = storages();
		expect(loadMode(s)).toBe('auto');
		s.local.setItem(MODE_KEY, 'purple');
		expect(loadMode(s)).toBe('auto');
		saveMode(s, 'dark');
		expect(loadMode(s)).toBe('dark');
	});

	it('auto follows the system preference', () => {
		expect(resolveMode('auto', true)).toBe('dark');
		expect(resolveMode('auto', false)).toBe('light');
		expect(resolveMode('light', true)).toBe('light');
	});

	it('falls back to sessionStorage when localStorage refuses', () => {
		const s = storages();
		s.local.failWrites = true;
		expect(saveMode(s, 'light')).toBe(true);
		expect(s.session.getItem(MODE_KEY)).toBe('light');
		expect(loadMode(s)).toBe('light');
	});
});

describe('skins', () => {
	it('has the twelve skins of the original', () => {
		expect(SKINS.map(([n]) => n)).toEqual([
			'default', 'beos', 'facebook2007', 'nintendo', 'nintendo-nes', 'windows98', 'macos8', 'winamp', 'protoss', 'terran', 'zerg', 'synthwave'
		]);
		expect(skinLabel('beos')).toBe('BeOS Classic');
		expect(skinLabel('unknown')).toBe('unknown');
	});

	it('stores and validates the skin', () => {
		const s = storages();
		expect(loadSkin(s)).toBe('default');
		s.local.setItem(SKIN_KEY, 'vista');
		expect(loadSkin(s)).toBe('default');
		saveSkin(s, 'zerg');
		expect(loadSkin(s)).toBe('zerg');
		expect(isSkin('winamp')).toBe(true);
	});
});

describe('workspace override', () => {
	it('forces valid override parts and keeps the preference otherwise', () => {
		expect(effective('auto', 'default', false, null)).toEqual({ theme: 'light', skin: 'default' });
		expect(effective('auto', 'default', false, { theme: 'dark', skin: 'synthwave' })).toEqual({ theme: 'dark', skin: 'synthwave' });
		expect(effective('light', 'beos', true, { theme: null, skin: 'terran' })).toEqual({ theme: 'light', skin: 'terran' });
		expect(effective('dark', 'beos', false, { theme: 'sepia', skin: 'nope' })).toEqual({ theme: 'dark', skin: 'beos' });
	});

	it('does not change the stored preference', () => {
		const s = storages();
		saveSkin(s, 'macos8');
		effective(loadMode(s), loadSkin(s), false, { skin: 'zerg' });
		expect(loadSkin(s)).toBe('macos8');
	});
});
