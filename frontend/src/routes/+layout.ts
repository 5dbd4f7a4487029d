// An SPA: everything renders in the browser; the coordinator serves 200.html for every client route.
export const ssr = false;
export const prerender = false;
