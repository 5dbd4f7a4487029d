// Helpers for the session's host tools (files, git) over `api/client.ts`'s `request`.

import { ApiError, request } from '../api/client';

/** GETs `url` and parses its JSON body; non-2xx → `ApiError` with the server's `detail`. */
export function getJson<T>(url: string, signal?: AbortSignal): Promise<T> {
	return request<T>('GET', url, undefined, signal);
}

/** A readable message for any error thrown by a fetch (network errors included). */
export function errorText(err: unknown): string {
	if (err instanceof ApiError) return err.detail;
	if (err instanceof Error) return err.message;
	return String(err);
}
