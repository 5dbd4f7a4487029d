// Vite configuration for the SPA and for the vitest specs (`src/**/*.spec.ts`, plain Node, no browser).
import { sveltekit } from '@sveltejs/kit/vite';
import { defineConfig } from 'vitest/config';

export default defineConfig({
	plugins: [sveltekit()],
	build: {
		// Mermaid and MathJax are large but only ever loaded on demand; do not warn about their chunks.
		chunkSizeWarningLimit: 4096
	},
	test: {
		include: ['src/**/*.spec.ts'],
		environment: 'node'
	}
});
