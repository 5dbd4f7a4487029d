// POSIX path arithmetic for the Files tab, done on strings: the paths belong to the agent's machine, not to
// the browser, so nothing here touches a file system. Paths are absolute (`/…`); `..` never climbs above `/`.

/** `/a//b/./c/../d/` → `/a/b/d`. A relative input is taken as relative to `/`. */
export function normalize(path: string): string {
	const out: string[] = [];
	for (const part of path.split('/')) {
		if (!part || part === '.') continue;
		if (part === '..') out.pop();
		else out.push(part);
	}
	return '/' + out.join('/');
}

/** The directory holding `path`, or null for `/`. */
export function parentOf(path: string): string | null {
	const p = normalize(path);
	if (p === '/') return null;
	return p.slice(0, p.lastIndexOf('/')) || '/';
}

/** The last component of `path` (`/` for the root). */
export function basename(path: string): string {
	const p = normalize(path);
	return p === '/' ? '/' : p.slice(p.lastIndexOf('/') + 1);
}

/** `dir` joined with `rel`; an absolute `rel` replaces `dir`. The result is normalized. */
export function joinPath(dir: string, rel: string): string {
	return normalize(rel.startsWith('/') ? rel : `${dir}/${rel}`);
}

/** Whether `path` is `root` or below it. */
export function isInside(root: string, path: string): boolean {
	const r = normalize(root);
	const p = normalize(path);
	return r === '/' || p === r || p.startsWith(r + '/');
}

/** `path` relative to `root` (`.` for the root itself), or null when it lies outside. */
export function relativeTo(root: string, path: string): string | null {
	if (!isInside(root, path)) return null;
	const r = normalize(root);
	const p = normalize(path);
	if (p === r) return '.';
	return r === '/' ? p.slice(1) : p.slice(r.length + 1);
}

/** One clickable step of a breadcrumb trail. */
export interface Crumb {
	name: string;
	path: string;
}

/**
 * Breadcrumbs for `path`. Inside `root` the trail starts at the root (named by its basename), so a deep
 * project path does not push the interesting part off a phone screen; outside it starts at `/`.
 */
export function crumbs(root: string, path: string): Crumb[] {
	const p = normalize(path);
	const r = normalize(root);
	const inside = isInside(r, p) && r !== '/';
	const start = inside ? r : '/';
	const out: Crumb[] = [{ name: start === '/' ? '/' : basename(start), path: start }];
	const rest = start === '/' ? p.slice(1) : p.slice(start.length + 1);
	let acc = start === '/' ? '' : start;
	for (const part of rest.split('/')) {
		if (!part) continue;
		acc += '/' + part;
		out.push({ name: part, path: acc });
	}
	return out;
}
