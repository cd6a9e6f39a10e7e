// The page's face fit and refinement (site/rectify.js: toSide, describe, match.js knn2, homography, refine) in node,
// on inputs tests/test_orb.py writes; prints JSON. Python's infer/orb.py and rectify must land on the same face.
//
//   node web/tests/orb_parity.mjs DIR     # DIR/cases.json: {constants, template: {file, h, w, orb},
//                                         #   cases: [{name, file, h, w}]}; DIR/<file>: h*w*3 RGB bytes;
//                                         # DIR/<orb>: the template's orb.bin (infer/page_build.orb_bytes)
import { readFileSync } from "node:fs";
import { createRequire } from "node:module";
import { join } from "node:path";

const web = new URL("..", import.meta.url).pathname, require = createRequire(web);
const mod = require("@techstark/opencv-js");
const cv = mod.Mat ? mod : await new Promise((r) => mod.then((m) => { delete m.then; r(m); }));
const { HammingIndex, TABLES, BITS, SEED } = await import(join(web, "site/match.js"));
const R = await import(join(web, "site/rectify.js"));

const dir = process.argv[2], spec = JSON.parse(readFileSync(join(dir, "cases.json"), "utf8")), C = spec.constants;
const rgbMat = (file, h, w) => cv.matFromArray(h, w, cv.CV_8UC3, Array.from(readFileSync(join(dir, file))));
const T = spec.template, orb = new Uint8Array(readFileSync(join(dir, T.orb)));
const n = new DataView(orb.buffer, orb.byteOffset).getUint32(0, true);
const t = { n, size: [T.w, T.h], image: rgbMat(T.file, T.h, T.w),
            pts: Float64Array.from(new Float32Array(orb.slice(4, 4 + 8 * n).buffer)),
            index: new HammingIndex(orb.slice(4 + 8 * n, 4 + 40 * n), n) };
const out = { lsh: { tables: TABLES, bits: BITS, seed: SEED } };
for (const c of spec.cases) {
  const rgb = rgbMat(c.file, c.h, c.w);
  const [small, s, owned] = R.toSide(cv, rgb, C.match_side);
  const grey = new cv.Mat();
  cv.cvtColor(small, grey, cv.COLOR_RGB2GRAY);
  const photo = R.describe(cv, grey, C.orb);
  const b0 = [], d0 = [], d1 = [], q = [], k = [];
  for (let i = 0; i < photo.n; i++) {
    const [c0, e0, c1, e1] = t.index.knn2(photo.words, i, photo.keys);
    b0.push(c0); d0.push(e0); d1.push(e1);
    if (c1 >= 0 && e0 < C.ratio * e1) { q.push(i); k.push(c0); }
  }
  const fit = R.homography(cv, photo, t, q, k, C, C.polish);
  const [H, moved] = R.refine(cv, rgb, R.mul(R.inv(R.pixelScaling(s)), fit.H), t, C.ecc);
  out[c.name] = { pts: Array.from(photo.pts), desc: Array.from(photo.desc.data), b0, d0, d1, q, k,
                  fit: fit.H, inliers: fit.inliers, matches: fit.matches, H, moved };
  photo.desc.delete(); grey.delete(); rgb.delete();
  if (owned) small.delete();
}
console.log(JSON.stringify(out));
