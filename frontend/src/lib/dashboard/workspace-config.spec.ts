import { describe, expect, it } from 'vitest';
import type { WorkspaceConfig } from '../api/types';
import { fromForm, isDirty, toForm } from './workspace-config';

/** A config as the server returns it (behaviour.md §7.1), with fields the dialog does not edit. */
const loaded: WorkspaceConfig = {
	version: 1,
	workspace: { mode: 'git_worktree', root: '~/wt/{project_slug}', branch_prefix: 'piface' },
	env: { use_direnv: true },
	files: { copy: ['.env'], symlink: [] },
	bootstrap: { shell: 'bash', script: 'make deps', timeout_seconds: 1800 },
	launch: null,
	git: { create_branch: true, detach: false },
	ui: { label_template: '{session_name}', theme_override: null, skin_override: null }
};

describe('workspace config form', () => {
	it('reads defaults where the config says nothing', () => {
		expect(toForm(loaded)).toEqual({
			theme: '',
			skin: '',
			useDirenv: true,
			launchScript: '',
			launchShell: 'bash',
			launchTimeout: '30',
			applyPi: true,
			applyPty: true
		});
		expect(toForm(null).useDirenv).toBe(true);
		expect(toForm({ ui: { theme_override: 'sepia' } }).theme).toBe('');
	});

	it('round-trips everything it does not edit', () => {
		const form = { ...toForm(loaded), theme: 'dark' as const, skin: 'beos', useDirenv: false };
		const r = fromForm(loaded, form);
		expect(r.ok).toBe(true);
		if (!r.ok) return;
		expect(r.config).toEqual({
			...loaded,
			env: { use_direnv: false },
			ui: { label_template: '{session_name}', theme_override: 'dark', skin_override: 'beos' },
			launch: null
		});
		expect(toForm(r.config)).toEqual(form);
	});

	it('writes a launch table for a script, keeping its unknown keys', () => {
		const base = { ...loaded, launch: { script: 'old', shell: 'zsh', timeout_seconds: 5, apply_to: ['pty'], extra: 1 } };
		const form = { ...toForm(base), launchScript: 'source venv/bin/activate\n', launchTimeout: ' 12 ', applyPi: true, applyPty: false };
		const r = fromForm(base, form);
		expect(r).toEqual({
			ok: true,
			config: { ...base, launch: { script: 'source venv/bin/activate\n', shell: 'zsh', timeout_seconds: 12, apply_to: ['pi'], extra: 1 } }
		});
	});

	it('removes the launch table for a blank script', () => {
		const base = { ...loaded, launch: { script: 'x' } };
		const r = fromForm(base, { ...toForm(base), launchScript: '   ' });
		expect(r.ok && r.config.launch).toBeNull();
	});

	it('refuses a bad timeout or a script that runs nowhere', () => {
		const form = { ...toForm(loaded), launchScript: 'x' };
		for (const t of ['', '0', '-3', '1.5', 'soon']) {
			expect(fromForm(loaded, { ...form, launchTimeout: t })).toEqual({ ok: false, error: expect.stringMatching(/whole number/) });
		}
		expect(fromForm(loaded, { ...form, applyPi: false, applyPty: false })).toEqual({ ok: false, error: expect.stringMatching(/Choose where/) });
	});

	it('notices edits', () => {
		const f = toForm(loaded);
		expect(isDirty({ ...f }, f)).toBe(false);
		expect(isDirty({ ...f, launchShell: 'zsh' }, f)).toBe(true);
	});
});
