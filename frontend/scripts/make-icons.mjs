// Draws Piface's app icons (our own artwork: a white π on an indigo rounded square, as favicon.svg) and writes
// them as PNGs into static/icons/, with node's zlib as the only encoder (no image library). Run it after
// changing the artwork: `node scripts/make-icons.mjs`; the PNGs are committed.
import { writeFileSync, mkdirSync } from 'node:fs';
import { deflateSync } from 'node:zlib';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const out = join(dirname(fileURLToPath(import.meta.url)), '..', 'static', 'icons');
const BG = [0x4f, 0x46, 0xe5];
const FG = [0xff, 0xff, 0xff];

/** Coverage of a unit-square design at (x, y) in [0, 1): 'bg', 'fg' or null (transparent). `pad` shrinks the
 * artwork into the maskable safe zone; `full` fills the square (no rounded corners) for maskable icons. */
function shade(x, y, { full, pad }) {
	const r = 0.22;
	if (!full) {
		const cx = Math.min(Math.max(x, r), 1 - r);
		const cy = Math.min(Math.max(y, r), 1 - r);
		if ((x - cx) ** 2 + (y - cy) ** 2 > r * r) return null;
	}
	// π in design units, scaled into the padded area.
	const u = (x - pad) / (1 - 2 * pad);
	const v = (y - pad) / (1 - 2 * pad);
	const inRect = (x0, y0, x1, y1) => u >= x0 && u < x1 && v >= y0 && v < y1;
	const bar = inRect(0.2, 0.27, 0.8, 0.39);
	const left = inRect(0.33, 0.33, 0.44, 0.76);
	// The right leg ends in a foot turned outwards.
	const right = inRect(0.56, 0.33, 0.67, 0.76) || inRect(0.67, 0.66, 0.77, 0.76);
	return bar || left || right ? 'fg' : 'bg';
}

function png(size, opts) {
	const ss = 4; // 4×4 supersampling for smooth edges
	const raw = Buffer.alloc((size * 4 + 1) * size);
	for (let py = 0; py < size; py++) {
		raw[py * (size * 4 + 1)] = 0;
		for (let px = 0; px < size; px++) {
			let r = 0, g = 0, b = 0, a = 0;
			for (let sy = 0; sy < ss; sy++)
				for (let sx = 0; sx < ss; sx++) {
					const c = shade((px + (sx + 0.5) / ss) / size, (py + (sy + 0.5) / ss) / size, opts);
					if (!c) continue;
					const col = c === 'fg' ? FG : BG;
					r += col[0]; g += col[1]; b += col[2]; a += 1;
				}
			const o = py * (size * 4 + 1) + 1 + px * 4;
			raw[o] = a ? Math.round(r / a) : 0;
			raw[o + 1] = a ? Math.round(g / a) : 0;
			raw[o + 2] = a ? Math.round(b / a) : 0;
			raw[o + 3] = Math.round((255 * a) / (ss * ss));
		}
	}
	const chunk = (type, data) => {
		const len = Buffer.alloc(4);
		len.writeUInt32BE(data.length);
		const td = Buffer.concat([Buffer.from(type), data]);
		const crc = Buffer.alloc(4);
		crc.writeUInt32BE(crc32(td));
		return Buffer.concat([len, td, crc]);
	};
	const ihdr = Buffer.alloc(13);
	ihdr.writeUInt32BE(size, 0);
	ihdr.writeUInt32BE(size, 4);
	ihdr[8] = 8; // bit depth
	ihdr[9] = 6; // RGBA
	return Buffer.concat([
		Buffer.from([0x89, 0x50, 0x4e, 0x47, 0x0d, 0x0a, 0x1a, 0x0a]),
		chunk('IHDR', ihdr),
		chunk('IDAT', deflateSync(raw, { level: 9 })),
		chunk('IEND', Buffer.alloc(0))
	]);
}

const CRC_TABLE = Array.from({ length: 256 }, (_, n) => {
	let c = n;
	for (let k = 0; k < 8; k++) c = c & 1 ? 0xedb88320 ^ (c >>> 1) : c >>> 1;
	return c >>> 0;
});

function crc32(buf) {
	let c = 0xffffffff;
	for (const byte of buf) c = CRC_TABLE[(c ^ byte) & 0xff] ^ (c >>> 8);
	return (c ^ 0xffffffff) >>> 0;
}

mkdirSync(out, { recursive: true });
const icons = [
	['icon-192.png', 192, { full: false, pad: 0 }],
	['icon-512.png', 512, { full: false, pad: 0 }],
	// Maskable: full bleed, the π inside the central 80 % safe zone.
	['maskable-512.png', 512, { full: true, pad: 0.12 }],
	// iOS rounds the corners itself and shows transparency as black: full bleed.
	['apple-touch-icon.png', 180, { full: true, pad: 0.06 }]
];
for (const [name, size, opts] of icons) writeFileSync(join(out, name), png(size, opts));
console.log(`wrote ${icons.length} icons to ${out}`);
