// The page's zone checks (site/zones.js, text.js, ocr.js) in node, on inputs tests/test_page_zones.py writes; prints
// JSON.
//
//   node web/tests/zones_parity.mjs DIR     # DIR/cases.json: {zones: [...], constants, cases: [{name, zones, fit,
//                                           # h, w, file, p}], ocr: {model, dict} | null, classes: [chars] | null};
//                                           # DIR/<file>: h*w*3 RGB bytes
// With spec.ocr the text zone is recognised with that ONNX file and character list, as the page's worker does; with
// spec.classes, how the page classes each character (letter or digit, Nd digit) comes back for Python to compare.
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
if (spec.ocr) {   // the page's worker: one session, the wasm backend, one thread
  const ort = await import(join(web, "node_modules/onnxruntime-web/dist/ort.wasm.min.mjs"));
  const { charset } = await import(join(web, "site/ocr.js"));
  ort.env.wasm.numThreads = 1;
  const t0 = performance.now();
  const session = await ort.InferenceSession.create(new Uint8Array(readFileSync(spec.ocr.model)),
                                                    { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  deps.ocr = { ort, session, charset: charset(readFileSync(spec.ocr.dict, "utf8")) };
  out.ocr_load_ms = performance.now() - t0;
}
if (spec.classes) {
  const { charClass } = await import(join(web, "site/text.js"));
  out.classes = spec.classes.map(charClass);
}
for (const c of spec.cases) {
  const t0 = performance.now();
  const sharp = new Uint8Array(readFileSync(join(dir, c.file)));
  const findings = await Z.checkZones(deps, sharp, c.h, c.w, spec.zones[c.zones], spec.constants);
  const ms = performance.now() - t0;
  out.cases[c.name] = { findings, weighed: Z.weighed(c.p, findings, c.fit), advice: Z.retakeAdvice(findings), ms };
}
console.log(JSON.stringify(out));
