// A small reverse proxy for the e2e suites, listening on loopback, forwarding HTTP and WebSocket upgrades to
// piface the way real proxies in front of it do:
//
// - `keepHost` (like `tailscale serve`): `Host` passes unchanged, and the proxy adds `X-Forwarded-Host`,
//   `X-Forwarded-Proto`, `X-Forwarded-For` and the identity headers `identity` gives (`Tailscale-User-Login`,
//   `Tailscale-User-Name`).
// - `rewriteHost` (nginx's default `proxy_set_header Host $proxy_host`): `Host` becomes the upstream's
//   `host:port` and nothing is added, so piface sees its own address and the browser's foreign `Origin`.
//
// The upstream can be set after the proxy listens (`setTarget`), since piface's flags may name the proxy's port.

import { createServer, request as httpRequest } from 'node:http';
import { tunnel } from './harness.mjs';

/** Starts a proxy on 127.0.0.1 (a free port). Resolves to `{ port, setTarget(url), close() }`. */
export async function startProxy({ mode = 'keepHost', target = null, proto = 'http', identity = {} } = {}) {
	let upstream = target ? new URL(target) : null;

	/** The headers sent upstream for a request that arrived with `rawHeaders` from `client`. */
	function headersFor(rawHeaders, client) {
		const out = [];
		let host = '';
		for (let i = 0; i < rawHeaders.length; i += 2) {
			const name = rawHeaders[i];
			const lower = name.toLowerCase();
			if (lower === 'host') host = rawHeaders[i + 1];
			// Clients cannot smuggle what the proxy vouches for.
			if (lower.startsWith('x-forwarded-') || lower.startsWith('tailscale-user-')) continue;
			if (lower === 'host' && mode === 'rewriteHost') continue;
			out.push([name, rawHeaders[i + 1]]);
		}
		if (mode === 'rewriteHost') {
			out.unshift(['Host', upstream.host]);
		} else {
			out.push(['X-Forwarded-Host', host], ['X-Forwarded-Proto', proto], ['X-Forwarded-For', client]);
			for (const [k, v] of Object.entries(identity)) out.push([k, v]);
		}
		return out;
	}

	const server = createServer((req, res) => {
		if (!upstream) {
			res.writeHead(503).end('no upstream yet');
			return;
		}
		const headers = headersFor(req.rawHeaders, req.socket.remoteAddress ?? '');
		const up = httpRequest({ host: upstream.hostname, port: upstream.port, method: req.method, path: req.url, headers: headers.flat() }, (r) => {
			res.writeHead(r.statusCode ?? 502, r.rawHeaders);
			r.pipe(res);
		});
		up.on('error', (e) => {
			if (!res.headersSent) res.writeHead(502, { 'content-type': 'application/json' });
			res.end(JSON.stringify({ detail: `proxy: ${e.message}` }));
		});
		req.pipe(up);
	});

	// Upgraded sockets are not the server's any more: track them so `close` can end them too.
	const tunnels = new Set();
	server.on('upgrade', (req, socket, head) => {
		if (!upstream) return socket.destroy();
		tunnel(req, socket, head, upstream, headersFor(req.rawHeaders, req.socket.remoteAddress ?? ''), tunnels);
	});

	await new Promise((r) => server.listen(0, '127.0.0.1', r));
	return {
		port: server.address().port,
		setTarget(url) {
			upstream = new URL(url);
		},
		close: () =>
			new Promise((r) => {
				for (const end of [...tunnels]) end();
				server.closeAllConnections?.();
				server.close(() => r());
			})
	};
}
