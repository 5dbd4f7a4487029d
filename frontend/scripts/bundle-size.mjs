// Initial JS + CSS transfer of the dashboard (`/`) and the session view (`/session/[id]`), gzip and brotli,
// from the output of `npm run build`. Run it after a build: `node scripts/bundle-size.mjs [--json]`.
//
// What counts as "initial": the shell page `build/200.html` (its modulepreload links, its stylesheet and the
// two entries its inline script imports), plus the node chunks the router loads for the route (the root
// layout, the root error page, the page) and everything those import *statically*, with their CSS; this is
// the set of JS and CSS files Chromium fetches for each route (checked against its resource timing). The import graph comes from Vite's manifest of the
// same build (`.svelte-kit/output/client/.vite/manifest.json`); which node is which route from SvelteKit's
// generated node modules. Dynamic imports are excluded: they load later and on demand (Mermaid, MathJax and
// highlight.js when a message needs them, other routes' nodes). Each excluded chunk is listed with the size
// it would add.
//
// Sizes are those of the `.gz` / `.br` twins the build writes (what the coordinator sends), else computed.

import { existsSync, readFileSync } from 'node:fs';
import { dirname, join, resolve } from 'node:path';
import { fileURLToPath } from 'node:url';
import { brotliCompressSync, gzipSync } from 'node:zlib';

const frontend = resolve(dirname(fileURLToPath(import.meta.url)), '..');
const build = join(frontend, 'build');
const manifestPath = join(frontend, '.svelte-kit/output/client/.vite/manifest.json');
const nodesDir = join(frontend, '.svelte-kit/generated/client-optimized/nodes');

const ROUTES = [
	['dashboard', 'src/routes/+page.svelte'],
	['session', 'src/routes/session/[id]/+page.svelte']
];

function fail(msg) {
	console.error(`bundle-size: ${msg}`);
	process.exit(1);
}

if (!existsSync(join(build, '200.html')) || !existsSync(manifestPath)) fail('no build found: run `npm run build` first');

/** @type {Record<string, {file: string, name?: string, src?: string, imports?: string[], dynamicImports?: string[], css?: string[]}>} */
const manifest = JSON.parse(readFileSync(manifestPath, 'utf8'));
const byFile = new Map(Object.entries(manifest).map(([key, chunk]) => [chunk.file, key]));

/** gzip and brotli bytes of a file under build/. */
const sizeCache = new Map();
function sizes(rel) {
	if (sizeCache.has(rel)) return sizeCache.get(rel);
	const file = join(build, rel);
	const raw = readFileSync(file);
	const twin = (ext, compress) => (existsSync(file + ext) ? readFileSync(file + ext).length : compress(raw).length);
	const s = { raw: raw.length, gzip: twin('.gz', (b) => gzipSync(b, { level: 9 })), brotli: twin('.br', brotliCompressSync) };
	sizeCache.set(rel, s);
	return s;
}

/** What the shell page loads by itself: modulepreloads, stylesheets, and the entries its script imports. */
function shellAssets() {
	const html = readFileSync(join(build, '200.html'), 'utf8');
	const urls = new Set();
	for (const m of html.matchAll(/<link\b[^>]*\bhref="([^"]+)"[^>]*>/g)) {
		if (/rel="(modulepreload|stylesheet)"/.test(m[0])) urls.add(m[1]);
	}
	for (const m of html.matchAll(/import\("([^"]+)"\)/g)) urls.add(m[1]);
	return [...urls].map((u) => u.replace(/^\//, '')).filter((u) => /\.(js|css)$/.test(u));
}

/** The manifest key of the node module whose component matches `component` (SvelteKit's generated nodes/N.js). */
function nodeKey(component) {
	for (const [key, chunk] of Object.entries(manifest)) {
		const m = /client-optimized\/nodes\/(\d+)\.js$/.exec(chunk.src ?? '');
		if (!m) continue;
		const src = readFileSync(join(nodesDir, `${m[1]}.js`), 'utf8');
		if (typeof component === 'string' ? src.includes(`/${component}"`) : component.test(src)) return key;
	}
	fail(`no node chunk for ${component}`);
}

/** Static closure of manifest keys; dynamic imports met on the way are collected, not followed. */
function closure(keys) {
	const seen = new Set();
	const dynamic = new Set();
	const stack = [...keys];
	while (stack.length) {
		const key = stack.pop();
		if (seen.has(key)) continue;
		seen.add(key);
		const chunk = manifest[key];
		if (!chunk) continue;
		for (const k of chunk.imports ?? []) stack.push(k);
		for (const k of chunk.dynamicImports ?? []) dynamic.add(k);
	}
	return { seen, dynamic };
}

function files(keys) {
	const js = new Set();
	const css = new Set();
	for (const key of keys) {
		const chunk = manifest[key];
		if (!chunk) continue;
		js.add(chunk.file);
		for (const c of chunk.css ?? []) css.add(c);
	}
	return { js, css };
}

function total(list) {
	return [...list].reduce((t, f) => ({ gzip: t.gzip + sizes(f).gzip, brotli: t.brotli + sizes(f).brotli, raw: t.raw + sizes(f).raw }), { gzip: 0, brotli: 0, raw: 0 });
}

function label(key) {
	const chunk = manifest[key];
	const src = chunk?.src ?? '';
	const pkg = /node_modules\/((?:@[^/]+\/)?[^/]+)/.exec(src)?.[1];
	return pkg ? `${pkg} (${chunk.name})` : src || chunk?.name || key;
}

const shell = shellAssets();
const shellKeys = shell.filter((f) => f.endsWith('.js')).map((f) => byFile.get(f)).filter(Boolean);
// The client router loads the root layout and the root error page at start, whatever the route.
const layoutKey = nodeKey('src/routes/+layout.svelte');
const errorKey = nodeKey(/\/(src\/routes\/\+error\.svelte|components\/svelte-5\/error\.svelte)"/);
const nodeKeys = new Set(Object.values(manifest).flatMap((c) => (/client-optimized\/nodes\//.test(c.src ?? '') ? [byFile.get(c.file)] : [])));

const report = {};
for (const [name, routeFile] of ROUTES) {
	const { seen, dynamic } = closure([...shellKeys, layoutKey, errorKey, nodeKey(routeFile)]);
	const { js, css } = files(seen);
	for (const f of shell) (f.endsWith('.css') ? css : js).add(f);
	const jsT = total(js);
	const cssT = total(css);
	// Lazy chunks reachable from this route (other routes' nodes are not this route's business).
	const lazy = [...dynamic]
		.filter((k) => !seen.has(k) && !nodeKeys.has(k) && !/error-template/.test(manifest[k]?.src ?? ''))
		.map((k) => {
			const more = closure([k]);
			const added = [...more.seen].filter((x) => !seen.has(x));
			const extra = files(added);
			const t = total(new Set([...extra.js, ...extra.css]));
			// Chunks that one loads on demand in turn (Mermaid's diagram types), not counted in its size.
			const nested = new Set(added.flatMap((x) => manifest[x]?.dynamicImports ?? []).filter((x) => !more.seen.has(x) && !seen.has(x))).size;
			return { chunk: label(k), files: extra.js.size + extra.css.size, gzip: t.gzip, brotli: t.brotli, nested_lazy_chunks: nested };
		})
		.sort((a, b) => b.gzip - a.gzip);
	report[name] = {
		js_files: js.size,
		css_files: css.size,
		js_gzip: jsT.gzip,
		css_gzip: cssT.gzip,
		total_gzip: jsT.gzip + cssT.gzip,
		js_brotli: jsT.brotli,
		css_brotli: cssT.brotli,
		total_brotli: jsT.brotli + cssT.brotli,
		raw: jsT.raw + cssT.raw,
		files: [...js, ...css].sort(),
		excluded_lazy: lazy
	};
}
report.shell_html = sizes('200.html');

if (process.argv.includes('--json')) {
	console.log(JSON.stringify(report, null, 2));
} else {
	const kib = (n) => `${(n / 1024).toFixed(1)} KiB`;
	for (const [name] of ROUTES) {
		const r = report[name];
		console.log(`${name}: ${kib(r.total_gzip)} gzip (JS ${kib(r.js_gzip)} in ${r.js_files} files, CSS ${kib(r.css_gzip)}), ${kib(r.total_brotli)} brotli, ${kib(r.raw)} uncompressed`);
		if (r.excluded_lazy.length) {
			console.log('  excluded, loaded on demand:');
			for (const l of r.excluded_lazy) {
				const nested = l.nested_lazy_chunks ? `, itself loading ${l.nested_lazy_chunks} more chunk${l.nested_lazy_chunks > 1 ? 's' : ''} on demand` : '';
				console.log(`    ${l.chunk}: +${kib(l.gzip)} gzip in ${l.files} file${l.files > 1 ? 's' : ''}${nested}`);
			}
		}
	}
	console.log(`shell page 200.html: ${kib(report.shell_html.gzip)} gzip`);
}
