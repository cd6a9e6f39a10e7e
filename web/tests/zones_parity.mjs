// The page's zone checks (site/zones.js) in node, on inputs tests/test_page_zones.py writes; prints JSON.
//
//   node web/tests/zones_parity.mjs DIR     # DIR/cases.json: {zones: [...], constants, cases: [{name, zones, fit,
//                                           # h, w, file, p}]}; DIR/<file>: h*w*3 RGB bytes
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const web = new URL("..", import.meta.url).pathname, require = createRequire(web);
const cv = require("@techstark/opencv-js");
if (!cv.Mat) await new Promise(r => (cv.onRuntimeInitialized = r));   // (awaiting cv itself never settles)
const zx = await import(join(web, "node_modules/zxing-wasm/dist/es/reader/index.js"));
const wasmBinary = readFileSync(join(web, "node_modules/zxing-wasm/dist/reader/zxing_reader.wasm"));
zx.prepareZXingModule({ overrides: { wasmBinary }, fireImmediately: true });   // the page: locateFile to its vendor/
const Z = await import(join(web, "site/zones.js"));

const dir = process.argv[2], spec = JSON.parse(readFileSync(join(dir, "cases.json"), "utf8"));
const deps = { cv, readBarcodes: zx.readBarcodes }, out = { ported: Z.PORTED, zones: Z.ZONES, cases: {} };
for (const c of spec.cases) {
  const t0 = performance.now();
  const sharp = new Uint8Array(readFileSync(join(dir, c.file)));
  const findings = await Z.checkZones(deps, sharp, c.h, c.w, spec.zones[c.zones], spec.constants);
  const ms = performance.now() - t0;
  out.cases[c.name] = { findings, weighed: Z.weighed(c.p, findings, c.fit), advice: Z.retakeAdvice(findings), ms };
}
console.log(JSON.stringify(out));
