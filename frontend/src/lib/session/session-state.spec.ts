// The session page's reading of `piface_session_state` frames (session-state.ts).

import { describe, expect, it } from 'vitest';
import type { ServerFrame } from '../api/protocol';
import { sessionStateRecord } from './session-state';

describe('sessionStateRecord', () => {
	it('takes the record of a session-state frame', () => {
		const session = { piface_id: 'a', working_dir: '/p', status: 'live' as const };
		expect(sessionStateRecord({ type: 'piface_session_state', session })).toBe(session);
	});

	it('is null for other frames and for records without an id or directory', () => {
		const frames: ServerFrame[] = [
			{ type: 'piface_error', message: 'x' },
			{ type: 'piface_session_state' },
			{ type: 'piface_session_state', session: null },
			{ type: 'piface_session_state', session: { piface_id: 'a' } },
			{ type: 'piface_session_state', session: { working_dir: '/p' } }
		];
		for (const f of frames) expect(sessionStateRecord(f)).toBeNull();
	});
});
