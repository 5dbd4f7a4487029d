// The Project Config dialog's model (ui.md §2 "WorkspaceConfigModal"): the editable part of a project's
// `.piface/workspace.toml` as form fields, and back. Everything the dialog does not edit (workspace, files,
// bootstrap, git, `ui.label_template`, keys this UI does not know) is carried through unchanged, because
// `PUT /api/workspace/config` rewrites the whole file.
//
// Not here: loading and saving (api/client.ts), the dialog (WorkspaceConfigDialog.svelte).

import type { WorkspaceConfig, WorkspaceLaunch } from '../api/types';

export type ThemeOverride = '' | 'light' | 'dark';

export interface ConfigForm {
	/** '' = none (the browser's mode). */
	theme: ThemeOverride;
	/** '' = none (the browser's skin). */
	skin: string;
	useDirenv: boolean;
	/** Blank removes the `[launch]` table. */
	launchScript: string;
	launchShell: string;
	/** As typed; checked by `fromForm`. */
	launchTimeout: string;
	applyPi: boolean;
	applyPty: boolean;
}

/** `[launch]` defaults of behaviour.md §7.1, used when the file has no launch table. */
export const LAUNCH_DEFAULTS = Object.freeze({ shell: 'bash', timeout_seconds: 30, apply_to: ['pi', 'pty'] });

/** The form's fields for a loaded config (defaults where it says nothing). */
export function toForm(config: WorkspaceConfig | null | undefined): ConfigForm {
	const ui = config?.ui ?? {};
	const launch: WorkspaceLaunch = config?.launch ?? {};
	const applyTo = Array.isArray(launch.apply_to) ? launch.apply_to : LAUNCH_DEFAULTS.apply_to;
	const theme = ui.theme_override === 'light' || ui.theme_override === 'dark' ? ui.theme_override : '';
	return {
		theme,
		skin: typeof ui.skin_override === 'string' ? ui.skin_override : '',
		useDirenv: config?.env?.use_direnv !== false,
		launchScript: typeof launch.script === 'string' ? launch.script : '',
		launchShell: typeof launch.shell === 'string' && launch.shell ? launch.shell : LAUNCH_DEFAULTS.shell,
		launchTimeout: String(typeof launch.timeout_seconds === 'number' ? launch.timeout_seconds : LAUNCH_DEFAULTS.timeout_seconds),
		applyPi: applyTo.includes('pi'),
		applyPty: applyTo.includes('pty')
	};
}

export type FromFormResult = { ok: true; config: WorkspaceConfig } | { ok: false; error: string };

/** The config to save: `base` (the loaded config) with the form's fields written over it. */
export function fromForm(base: WorkspaceConfig | null | undefined, form: ConfigForm): FromFormResult {
	const config: WorkspaceConfig = { ...(base ?? {}) };
	config.ui = { ...(base?.ui ?? {}), theme_override: form.theme || null, skin_override: form.skin || null };
	config.env = { ...(base?.env ?? {}), use_direnv: form.useDirenv };

	const script = form.launchScript.trim() ? form.launchScript : '';
	if (!script) {
		config.launch = null;
		return { ok: true, config };
	}
	const timeout = Number(form.launchTimeout.trim());
	if (!form.launchTimeout.trim() || !Number.isInteger(timeout) || timeout <= 0) {
		return { ok: false, error: 'Launch timeout must be a whole number of seconds, at least 1.' };
	}
	const applyTo = [...(form.applyPi ? ['pi'] : []), ...(form.applyPty ? ['pty'] : [])];
	if (!applyTo.length) return { ok: false, error: 'Choose where the launch script runs: pi, the terminal, or both.' };
	config.launch = {
		...(base?.launch ?? {}),
		script,
		shell: form.launchShell.trim() || LAUNCH_DEFAULTS.shell,
		timeout_seconds: timeout,
		apply_to: applyTo
	};
	return { ok: true, config };
}

/** Whether the form differs from what was loaded (a focus reload must not throw edits away). */
export function isDirty(form: ConfigForm, loaded: ConfigForm): boolean {
	return (Object.keys(form) as (keyof ConfigForm)[]).some((k) => form[k] !== loaded[k]);
}
