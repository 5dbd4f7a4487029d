import { describe, expect, it } from 'vitest';
import { basename, crumbs, isInside, joinPath, normalize, parentOf, relativeTo } from './paths';

describe('normalize', () => {
	it.each([
		['/a//b/./c/../d/', '/a/b/d'],
		['/', '/'],
		['', '/'],
		['/..', '/'],
		['/a/../../b', '/b'],
		['a/b', '/a/b']
	])('%s → %s', (input, out) => expect(normalize(input)).toBe(out));
});

describe('parentOf / basename / joinPath', () => {
	it('climbs one level, stopping at the root', () => {
		expect(parentOf('/home/u/p')).toBe('/home/u');
		expect(parentOf('/home')).toBe('/');
		expect(parentOf('/')).toBeNull();
		expect(parentOf('/home/u/')).toBe('/home');
	});

	it('names the last component', () => {
		expect(basename('/home/u/p.md')).toBe('p.md');
		expect(basename('/')).toBe('/');
	});

	it('joins relative paths and lets absolute ones win', () => {
		expect(joinPath('/repo/docs', '../img/a.png')).toBe('/repo/img/a.png');
		expect(joinPath('/repo/docs', './a b.md')).toBe('/repo/docs/a b.md');
		expect(joinPath('/repo/docs', '/etc/hosts')).toBe('/etc/hosts');
	});
});

describe('isInside / relativeTo', () => {
	it('compares whole components', () => {
		expect(isInside('/repo', '/repo/src/a.ts')).toBe(true);
		expect(isInside('/repo', '/repo')).toBe(true);
		expect(isInside('/repo', '/repository/x')).toBe(false);
		expect(isInside('/', '/anything')).toBe(true);
	});

	it('gives the relative path or null', () => {
		expect(relativeTo('/repo', '/repo/src/a.ts')).toBe('src/a.ts');
		expect(relativeTo('/repo/', '/repo')).toBe('.');
		expect(relativeTo('/repo', '/etc/hosts')).toBeNull();
		expect(relativeTo('/', '/etc/hosts')).toBe('etc/hosts');
	});
});

describe('crumbs', () => {
	it('starts at the root inside it', () => {
		expect(crumbs('/home/u/repo', '/home/u/repo/src/lib')).toEqual([
			{ name: 'repo', path: '/home/u/repo' },
			{ name: 'src', path: '/home/u/repo/src' },
			{ name: 'lib', path: '/home/u/repo/src/lib' }
		]);
		expect(crumbs('/home/u/repo', '/home/u/repo')).toEqual([{ name: 'repo', path: '/home/u/repo' }]);
	});

	it('starts at / outside the root', () => {
		expect(crumbs('/home/u/repo', '/home/u')).toEqual([
			{ name: '/', path: '/' },
			{ name: 'home', path: '/home' },
			{ name: 'u', path: '/home/u' }
		]);
		expect(crumbs('/', '/')).toEqual([{ name: '/', path: '/' }]);
	});
});
