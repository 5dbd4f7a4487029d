// Rewrites the links and media of a previewed Markdown file (browser only: it parses the sanitised HTML in a
// `<template>`): relative and absolute file references point at `/api/fs/raw` on the session's agent, and
// links to files get `data-fs-path` so the Files tab can open them in place. Other URLs are left alone.

import { rawUrl } from './api';
import { markdownTarget } from './preview';

const MEDIA = 'img[src], video[src], audio[src], source[src]';

export function rewriteLinks(html: string, fileDir: string, agent: string | undefined): string {
	const tpl = document.createElement('template');
	tpl.innerHTML = html;
	for (const el of tpl.content.querySelectorAll<HTMLElement>(MEDIA)) {
		const target = markdownTarget(el.getAttribute('src') ?? '', fileDir);
		if (target) el.setAttribute('src', rawUrl(target, agent));
	}
	for (const a of tpl.content.querySelectorAll<HTMLAnchorElement>('a[href]')) {
		const target = markdownTarget(a.getAttribute('href') ?? '', fileDir);
		if (!target) continue;
		a.setAttribute('href', rawUrl(target, agent));
		a.dataset.fsPath = target;
	}
	return tpl.innerHTML;
}
