import { beforeEach, describe, expect, it } from 'vitest';
import { MemoryStorage, type Storages } from '../persistence/storage';
import { filesKeys, filesRoot, loadFilesView, loadRecent, pushRecent, RECENT_LIMIT, saveFilesView, saveRecent, sessionAgent } from './view-state';

let s: Storages;
let local: MemoryStorage;
let sess: MemoryStorage;

beforeEach(() => {
	local = new MemoryStorage();
	sess = new MemoryStorage();
	s = { local, session: sess };
});

describe('filesRoot / sessionAgent', () => {
	it('uses the execution dir of worktree sessions, else the working dir', () => {
		expect(filesRoot({ working_dir: '/p', execution_dir: '/wt/p', workspace_mode: 'git_worktree' })).toBe('/wt/p');
		expect(filesRoot({ working_dir: '/p/', execution_dir: '/other', workspace_mode: 'shared' })).toBe('/p');
		expect(filesRoot({ working_dir: '/p', execution_dir: null, workspace_mode: 'git_worktree' })).toBe('/p');
	});

	it('reads the agent name in its string and object forms', () => {
		expect(sessionAgent({ agent: 'gpu-box' })).toBe('gpu-box');
		expect(sessionAgent({ agent: { id: 'a1', name: 'laptop' } })).toBe('laptop');
		expect(sessionAgent({ agent: { id: 'a1' } })).toBe('a1');
		expect(sessionAgent({ agent: '' })).toBeUndefined();
		expect(sessionAgent({ agent: null })).toBeUndefined();
		expect(sessionAgent(null)).toBeUndefined();
	});
});

describe('files view state', () => {
	it('round-trips through sessionStorage only', () => {
		expect(saveFilesView(s, 's1', { currentPath: '/r/src', selectedPath: '/r/src/a.ts', previewFullscreen: true })).toBe(true);
		expect(local.map.size).toBe(0);
		expect(sess.getItem(filesKeys.view('s1'))).not.toBeNull();
		expect(loadFilesView(s, 's1')).toEqual({ currentPath: '/r/src', selectedPath: '/r/src/a.ts', previewFullscreen: true });
		expect(loadFilesView(s, 's2')).toBeNull();
	});

	it('ignores invalid entries and drops invalid fields', () => {
		sess.setItem(filesKeys.view('a'), 'not json');
		sess.setItem(filesKeys.view('b'), JSON.stringify({ currentPath: 'relative' }));
		sess.setItem(filesKeys.view('c'), JSON.stringify({ currentPath: '/r/', selectedPath: 7, previewFullscreen: 'yes' }));
		expect(loadFilesView(s, 'a')).toBeNull();
		expect(loadFilesView(s, 'b')).toBeNull();
		expect(loadFilesView(s, 'c')).toEqual({ currentPath: '/r', selectedPath: null });
		expect(saveFilesView({ local, session: null }, 'x', { currentPath: '/', selectedPath: null })).toBe(false);
	});
});

describe('recent files', () => {
	it('keeps the newest first, without duplicates, inside the root, at most 8', () => {
		let list: string[] = [];
		for (let i = 0; i < 10; i++) list = pushRecent(list, `/r/f${i}`, '/r');
		expect(list).toHaveLength(RECENT_LIMIT);
		expect(list[0]).toBe('/r/f9');
		list = pushRecent(list, '/r/f5', '/r');
		expect(list[0]).toBe('/r/f5');
		expect(list.filter((x) => x === '/r/f5')).toHaveLength(1);
		expect(pushRecent(['/r/a'], '/etc/passwd', '/r')).toEqual(['/r/a']);
		expect(pushRecent(['/elsewhere', '/r/a'], '/r/b', '/r')).toEqual(['/r/b', '/r/a']);
	});

	it('persists per root in localStorage and drops foreign or invalid entries on read', () => {
		saveRecent(s, '/r', ['/r/a', '/r/b']);
		expect(local.getItem(filesKeys.recent('/r'))).toBe('["/r/a","/r/b"]');
		expect(filesKeys.recent('/r x')).toBe('piface.directory.recent-files:%2Fr%20x');
		expect(loadRecent(s, '/r')).toEqual(['/r/a', '/r/b']);
		local.setItem(filesKeys.recent('/q'), JSON.stringify(['/q/a', '/etc/x', 5, 'rel']));
		expect(loadRecent(s, '/q')).toEqual(['/q/a']);
		local.failWrites = true;
		expect(() => saveRecent(s, '/r', [])).not.toThrow();
	});
});
