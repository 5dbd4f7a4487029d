import { describe, expect, it } from 'vitest';
import { ApiError } from '../api/client';
import { changedSinceTrusted, isTrustRefusal, mustAsk, reviewAndTrust, withWorkspaceTrust, type TrustDeps, type WorkspaceTrustInfo } from './trust';

const A = 'a'.repeat(64);
const B = 'b'.repeat(64);

function info(over: Partial<WorkspaceTrustInfo> = {}): WorkspaceTrustInfo {
	return {
		project_dir: '/home/u/repo',
		config_path: '/home/u/repo/.piface/workspace.toml',
		has_config_file: true,
		sha256: A,
		commands: [{ section: 'bootstrap', shell: 'bash', script: 'touch marker', runs: 'once in each new worktree' }],
		needs_trust: true,
		trusted: false,
		trusted_sha256: null,
		...over
	};
}

const refusal = () => new ApiError(409, `Workspace not trusted: /home/u/repo/.piface/workspace.toml would run [bootstrap] (sha256 ${A})`);

/** Deps answering from a list of infos (one per `info` call) and recording what happened. */
function fakeDeps(infos: WorkspaceTrustInfo[], answers: boolean[], trustErrors: (Error | null)[] = []) {
	const log: string[] = [];
	const deps: TrustDeps = {
		info: async (path, agent) => {
			log.push(`info ${path} ${agent ?? '-'}`);
			return infos.shift() ?? info({ trusted: true });
		},
		confirm: async (i) => {
			log.push(`ask ${i.sha256}`);
			return answers.shift() ?? false;
		},
		trust: async (path, sha, agent) => {
			log.push(`trust ${path} ${sha} ${agent ?? '-'}`);
			const e = trustErrors.shift();
			if (e) throw e;
			return info({ trusted: true, trusted_sha256: sha });
		}
	};
	return { deps, log };
}

describe('workspace trust', () => {
	it('asks only for files with commands whose content is not trusted', () => {
		expect(mustAsk(info())).toBe(true);
		expect(mustAsk(info({ trusted: true, trusted_sha256: A }))).toBe(false);
		expect(mustAsk(info({ needs_trust: false, commands: [] }))).toBe(false);
		expect(mustAsk(info({ has_config_file: false, sha256: null, needs_trust: false }))).toBe(false);
		expect(changedSinceTrusted(info({ trusted_sha256: B }))).toBe(true);
		expect(changedSinceTrusted(info())).toBe(false);
	});

	it('recognises the refusal by status and wording only', () => {
		expect(isTrustRefusal(refusal())).toBe(true);
		expect(isTrustRefusal(new ApiError(409, 'pi process exited immediately with code 1'))).toBe(false);
		expect(isTrustRefusal(new ApiError(400, 'Workspace not trusted'))).toBe(false);
		expect(isTrustRefusal(new Error('Workspace not trusted'))).toBe(false);
	});

	it('trusts exactly the hash shown, for the project the server named, on the same agent, then retries', async () => {
		const { deps, log } = fakeDeps([info()], [true]);
		let calls = 0;
		const op = async () => {
			calls++;
			if (calls === 1) throw refusal();
			return 'created';
		};
		expect(await withWorkspaceTrust('/home/u/repo/sub', op, deps, 'gpu')).toBe('created');
		expect(log).toEqual(['info /home/u/repo/sub gpu', `ask ${A}`, `trust /home/u/repo ${A} gpu`]);
		expect(calls).toBe(2);
	});

	it('keeps the refusal when the user declines, and runs nothing more', async () => {
		const { deps, log } = fakeDeps([info()], [false]);
		let calls = 0;
		const op = async () => {
			calls++;
			throw refusal();
		};
		await expect(withWorkspaceTrust('/r', op, deps)).rejects.toThrow(/Workspace not trusted/);
		expect(calls).toBe(1);
		expect(log.some((l) => l.startsWith('trust'))).toBe(false);
	});

	it('passes other errors through without asking', async () => {
		const { deps, log } = fakeDeps([], []);
		const op = async () => {
			throw new ApiError(409, 'Directory does not exist: /x');
		};
		await expect(withWorkspaceTrust('/x', op, deps)).rejects.toThrow('Directory does not exist');
		expect(log).toEqual([]);
	});

	it('shows a file that changed while the dialog was open again, with its new hash', async () => {
		const changed = new ApiError(409, 'The workspace file of /home/u/repo changed since it was shown');
		const { deps, log } = fakeDeps([info(), info({ sha256: B, trusted_sha256: null })], [true, true], [changed]);
		expect(await reviewAndTrust('/home/u/repo', null, deps)).toBe(true);
		expect(log).toEqual([
			'info /home/u/repo -',
			`ask ${A}`,
			`trust /home/u/repo ${A} -`,
			'info /home/u/repo -',
			`ask ${B}`,
			`trust /home/u/repo ${B} -`
		]);
	});

	it('needs no dialog when the file is trusted meanwhile or has nothing to run', async () => {
		const { deps, log } = fakeDeps([info({ trusted: true, trusted_sha256: A })], []);
		expect(await reviewAndTrust('/r', null, deps)).toBe(true);
		expect(log).toEqual(['info /r -']);
	});
});
