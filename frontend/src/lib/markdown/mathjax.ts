// MathJax 3 (TeX in, SVG out), bundled and loaded on demand by enhance.ts. SVG output needs no web fonts,
// so nothing is fetched at run time (the original loaded MathJax from a CDN).

import { mathjax } from 'mathjax-full/js/mathjax.js';
import { TeX } from 'mathjax-full/js/input/tex.js';
import { SVG } from 'mathjax-full/js/output/svg.js';
import { browserAdaptor } from 'mathjax-full/js/adaptors/browserAdaptor.js';
import { RegisterHTMLHandler } from 'mathjax-full/js/handlers/html.js';
import 'mathjax-full/js/input/tex/base/BaseConfiguration.js';
import 'mathjax-full/js/input/tex/ams/AmsConfiguration.js';
import 'mathjax-full/js/input/tex/newcommand/NewcommandConfiguration.js';
import 'mathjax-full/js/input/tex/noundefined/NoUndefinedConfiguration.js';
import 'mathjax-full/js/input/tex/boldsymbol/BoldsymbolConfiguration.js';
import 'mathjax-full/js/input/tex/braket/BraketConfiguration.js';
import 'mathjax-full/js/input/tex/mathtools/MathtoolsConfiguration.js';

const adaptor = browserAdaptor();
RegisterHTMLHandler(adaptor);
const tex = new TeX({ packages: ['base', 'ams', 'newcommand', 'noundefined', 'boldsymbol', 'braket', 'mathtools'] });
const svg = new SVG({ fontCache: 'local' });
const doc = mathjax.document(document, { InputJax: tex, OutputJax: svg });
document.head.appendChild(svg.styleSheet(doc) as unknown as Node);

/** Typesets one TeX expression as an SVG element. */
export function texToSvg(source: string, display: boolean): Node {
	return doc.convert(source, { display }) as Node;
}
