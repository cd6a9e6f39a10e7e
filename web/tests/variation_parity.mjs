// The page's genuine variation (site/variation.js) in node, on inputs tests/test_page_variation.py writes; prints JSON.
//
//   node web/tests/variation_parity.mjs DIR   # DIR/cases.json: {h, w, stride, variation: {centre, scale, ...},
//                                             # constants, cases: [{name, file}]}; DIR/variation.bin;
//                                             # DIR/<file>: h*w*3 RGB bytes
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const web = new URL("..", import.meta.url).pathname, require = createRequire(web);
const mod = require("@techstark/opencv-js");
// Emscripten's Module is a thenable that resolves to itself: awaiting it never settles, so unwrap its then once
const cv = mod.Mat ? mod : await new Promise((r) => mod.then((m) => { delete m.then; r(m); }));
const V = await import(join(web, "site/variation.js"));

const dir = process.argv[2], spec = JSON.parse(readFileSync(join(dir, "cases.json"), "utf8"));
const { h, w } = spec;
const model = { ...V.readVariation(readFileSync(join(dir, "variation.bin")), h, w), ...spec.variation };
const out = {};
for (const c of spec.cases) {
  const face = new Uint8Array(readFileSync(join(dir, c.file)));
  const t0 = performance.now();
  const e = V.variationEvidence(cv, face, h, w, model, spec.constants, spec.stride);
  out[c.name] = { score: e.score, cells: Array.from(e.cells), cellsH: e.cellsH, cellsW: e.cellsW,
                  ms: performance.now() - t0 };
}
console.log(JSON.stringify(out));
