import { describe, expect, it } from 'vitest';
import type { SessionRecord } from '../api/types';
import { createBody, fieldsFromSession, validateFields, type NewSessionFields } from './new-session';

const fields = (extra: Partial<NewSessionFields> = {}): NewSessionFields => ({
	workingDir: ' /p ',
	provider: '',
	model: '',
	thinking: '',
	name: '',
	direnv: 'default',
	ephemeral: false,
	agent: '',
	...extra
});

describe('new session payload', () => {
	it('sends only what was filled in, always shared', () => {
		expect(createBody(fields())).toEqual({ working_dir: '/p', shared: true });
		expect(
			createBody(fields({ provider: ' fake ', model: 'm', thinking: 'medium', name: ' demo ', ephemeral: true, agent: 'gpu' }))
		).toEqual({ working_dir: '/p', shared: true, provider: 'fake', model: 'm', thinking_level: 'medium', session_name: 'demo', no_session: true, agent: 'gpu' });
	});

	it('maps the direnv choice to use_direnv', () => {
		expect(createBody(fields({ direnv: 'default' })).use_direnv).toBeUndefined();
		expect(createBody(fields({ direnv: 'on' })).use_direnv).toBe(true);
		expect(createBody(fields({ direnv: 'off' })).use_direnv).toBe(false);
	});

	it('needs a directory, and an agent when there is a choice', () => {
		expect(validateFields(fields({ workingDir: '  ' }), 'none')).toMatch(/working directory/);
		expect(validateFields(fields(), 'choose')).toMatch(/agent/);
		expect(validateFields(fields({ agent: 'gpu' }), 'choose')).toBeNull();
		expect(validateFields(fields(), 'fixed')).toBeNull();
		expect(validateFields(fields(), 'none')).toBeNull();
	});
});

describe('new from defaults payload', () => {
	const record = (extra: Partial<SessionRecord> = {}): SessionRecord => ({
		piface_id: 'id-1',
		working_dir: '/p/sub',
		project_dir: '/p',
		status: 'live',
		model_provider: 'fake',
		model_id: 'fake-model',
		thinking_level: 'high',
		no_session: false,
		agent: 'box',
		...extra
	});

	it("keeps the session's agent, project directory and model (issue 19)", () => {
		expect(createBody(fieldsFromSession(record(), ' copy '))).toEqual({
			working_dir: '/p',
			shared: true,
			provider: 'fake',
			model: 'fake-model',
			thinking_level: 'high',
			session_name: 'copy',
			agent: 'box'
		});
	});

	it('reads the object form of the agent, and sends none when the record names none', () => {
		expect(createBody(fieldsFromSession(record({ agent: { name: 'gpu' } }), '')).agent).toBe('gpu');
		expect(createBody(fieldsFromSession(record({ agent: undefined }), '')).agent).toBeUndefined();
		expect(createBody(fieldsFromSession(record({ agent: null }), '')).agent).toBeUndefined();
	});

	it('carries ephemerality and the direnv choice, and falls back to the working directory', () => {
		const body = createBody(fieldsFromSession(record({ project_dir: null, no_session: true, use_direnv: false, thinking_level: null, model_provider: null, model_id: null }), ''));
		expect(body).toEqual({ working_dir: '/p/sub', shared: true, no_session: true, use_direnv: false, agent: 'box' });
		expect(createBody(fieldsFromSession(record({ use_direnv: true }), '')).use_direnv).toBe(true);
		expect(createBody(fieldsFromSession(record(), '')).use_direnv).toBeUndefined();
	});
});
