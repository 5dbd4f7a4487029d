// SvelteKit configuration: a single-page app built by adapter-static.
//
// Every route is rendered in the browser (`ssr = false` in src/routes/+layout.ts). The fallback page is
// `200.html`, not `index.html` (STYLE.md): the coordinator serves it for `/` and every unknown non-API path,
// and embeds the whole `build/` folder into the `piface` binary.
import adapter from '@sveltejs/adapter-static';
import { vitePreprocess } from '@sveltejs/vite-plugin-svelte';

/** @type {import('@sveltejs/kit').Config} */
const config = {
	preprocess: vitePreprocess(),
	kit: {
		// precompress: the coordinator serves the .br/.gz twins to browsers that accept them.
		adapter: adapter({ pages: 'build', assets: 'build', fallback: '200.html', precompress: true, strict: true }),
		// No polling for new versions: the binary and its UI are deployed together.
		version: { pollInterval: 0 }
	}
};

export default config;
