// Touches `embed-stamp` after a build so that cargo recompiles the coordinator, which includes that file:
// rust-embed reads `build/` when the coordinator is compiled, and cargo cannot see a folder's new files.
// Only the modification time changes, so git sees no difference.
import { utimesSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const stamp = fileURLToPath(new URL('../embed-stamp', import.meta.url));
const now = new Date();
utimesSync(stamp, now, now);
