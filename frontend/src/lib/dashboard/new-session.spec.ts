import { describe, expect, it } from 'vitest';
import { createBody, validateFields, type NewSessionFields } from './new-session';

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
