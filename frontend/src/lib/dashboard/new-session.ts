// The New Session form's payload (ui.md §2, plus the agent of a cluster): only non-empty fields, always
// `shared: true`, `use_direnv` from the three-way choice, and the agent the session should run on.
//
// Also the fields of "New from defaults" (a fresh session with an existing one's settings, on its agent), so
// that both ways of creating a session build their body here.
//
// Not here: defaults of provider and model (grouping.ts) and of the agent (agents/agents.ts).

import type { CreateSessionBody, SessionRecord } from '../api/types';
import type { PickerMode } from '../agents/agents';
import { sessionAgent } from '../files/view-state';

export type DirenvChoice = 'default' | 'on' | 'off';

export interface NewSessionFields {
	workingDir: string;
	provider: string;
	model: string;
	thinking: string;
	name: string;
	direnv: DirenvChoice;
	ephemeral: boolean;
	/** '' when no agent is chosen (or the server knows no agents). */
	agent: string;
}

/** Why the form cannot be sent yet, or null. */
export function validateFields(f: NewSessionFields, agentMode: PickerMode): string | null {
	if (!f.workingDir.trim()) return 'Enter a working directory.';
	if (agentMode === 'choose' && !f.agent) return 'Choose the agent (machine) to run on.';
	return null;
}

/** The `POST /api/sessions` body. */
export function createBody(f: NewSessionFields): CreateSessionBody {
	const body: CreateSessionBody = { working_dir: f.workingDir.trim(), shared: true };
	if (f.provider.trim()) body.provider = f.provider.trim();
	if (f.model.trim()) body.model = f.model.trim();
	if (f.thinking) body.thinking_level = f.thinking;
	if (f.name.trim()) body.session_name = f.name.trim();
	if (f.ephemeral) body.no_session = true;
	if (f.direnv !== 'default') body.use_direnv = f.direnv === 'on';
	if (f.agent) body.agent = f.agent;
	return body;
}

/** The fields of "New from defaults" of `r`: its project directory (else its working directory), model,
 * thinking level, ephemerality, direnv choice and agent, with the name typed in the prompt. */
export function fieldsFromSession(r: SessionRecord, name: string): NewSessionFields {
	return {
		workingDir: r.project_dir || r.working_dir,
		provider: r.model_provider ?? '',
		model: r.model_id ?? '',
		thinking: r.thinking_level ?? '',
		name,
		direnv: typeof r.use_direnv === 'boolean' ? (r.use_direnv ? 'on' : 'off') : 'default',
		ephemeral: !!r.no_session,
		agent: sessionAgent(r) ?? ''
	};
}
