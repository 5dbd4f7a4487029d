// The record a session socket's `piface_session_state` frame carries: the session page takes it as the
// session's record (header, live or closed, theme overrides). Pure, so the fixture spec can feed it frames.
//
// Not here: what the page does with the record (SessionView.svelte `setRecord`).

import type { ServerFrame } from '../api/protocol';
import type { SessionRecord } from '../api/types';

/** The record of a `piface_session_state` frame; null for any other frame, or one without a usable record. */
export function sessionStateRecord(frame: ServerFrame): SessionRecord | null {
	if (frame.type !== 'piface_session_state') return null;
	const s = (frame as { session?: unknown }).session;
	if (!s || typeof s !== 'object') return null;
	const r = s as SessionRecord;
	return typeof r.piface_id === 'string' && typeof r.working_dir === 'string' ? r : null;
}
