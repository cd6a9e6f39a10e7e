// The product's genuine variation on the page: infer/variation.py's evidence(model, face), step by step.
//
//     import { readVariation, variationEvidence } from "./variation.js";
//     const { median, spread } = readVariation(await (await fetch(dir + "/variation.bin")).arrayBuffer(), h, w);
//     const model = { median, spread, centre: t.variation.centre, scale: t.variation.scale };
//     const { score, cells, cellsH, cellsW } = variationEvidence(cv, face, h, w, model, site.constants.variation);
//
// face: h*w*3 RGB bytes (HWC), the comparator's input. score is Python's standardised score, cells its per-pixel
// strength max-pooled over stride x stride cells (tests/test_page_variation.py checks both against Python).
//
// OpenCV.js runs what is the same C++ on both sides: cvtColor and GaussianBlur (1 ulp apart at most). Not the warps:
// Python's cv2 (5.x) interpolates with exact bilinear weights (or IPP's, for BORDER_CONSTANT), OpenCV.js 4.12 with
// weights quantised to 1/32 px (0.02 to 0.07 grey levels apart on a smooth image), and findTransformECC warps inside
// its loop. So the ECC homography (OpenCV 5's modules/video/src/ecc.cpp) and the warps are ported (ecc.js); the ECC
// homography then agrees to about 1e-6 (float32 sums inside cv2 that depend on its SIMD).
// numpy's dtypes are kept: float32 where numpy stays in float32 (the face, high-passes, pairwise sums of means and
// var, z), float64 where it promotes (np.cov, the photometric fit: a float64 scalar times a float32 array is float64
// under NEP 50).

import { F, blur, warp, ecc } from "./ecc.js";

/** variation.bin: float16 median (h, w, 3), then float16 spread (h, w, 4), little-endian, HWC; as float32 arrays. */
export function readVariation(buffer, h, w) {
  const n = h * w;
  const view = ArrayBuffer.isView(buffer) ? new DataView(buffer.buffer, buffer.byteOffset, buffer.byteLength)
    : new DataView(buffer);
  if (view.byteLength !== n * 7 * 2) throw new Error(`variation.bin: ${view.byteLength} bytes, not ${n * 14}`);
  const median = new Float32Array(n * 3), spread = new Float32Array(n * 4);
  for (let i = 0; i < n * 3; i++) median[i] = half(view.getUint16(2 * i, true));
  for (let i = 0; i < n * 4; i++) spread[i] = half(view.getUint16(2 * (n * 3 + i), true));
  return { median, spread };
}

function half(b) {   // IEEE 754 binary16 -> number (exact: every float16 is a float32)
  const e = (b >> 10) & 31, m = b & 1023, s = b & 32768 ? -1 : 1;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

// numpy's pairwise sum (8 accumulators, blocks of 128), float32 (psum32: every partial sum rounded to float32) or
// float64 (psum64); two copies rather than a rounding callback, which kept V8 from inlining it
function psum32(a, lo, n) {
  if (n < 8) {
    let s = -0;
    for (let i = lo; i < lo + n; i++) s = F(s + a[i]);
    return s;
  }
  if (n <= 128) {   // eight running sums in locals (an array here was a third of the step's garbage)
    let r0 = a[lo], r1 = a[lo + 1], r2 = a[lo + 2], r3 = a[lo + 3], r4 = a[lo + 4], r5 = a[lo + 5], r6 = a[lo + 6],
      r7 = a[lo + 7], i = 8;
    for (const end = n - (n % 8); i < end; i += 8) {
      const b = lo + i;
      r0 = F(r0 + a[b]); r1 = F(r1 + a[b + 1]); r2 = F(r2 + a[b + 2]); r3 = F(r3 + a[b + 3]);
      r4 = F(r4 + a[b + 4]); r5 = F(r5 + a[b + 5]); r6 = F(r6 + a[b + 6]); r7 = F(r7 + a[b + 7]);
    }
    let s = F(F(F(r0 + r1) + F(r2 + r3)) + F(F(r4 + r5) + F(r6 + r7)));
    for (; i < n; i++) s = F(s + a[lo + i]);
    return s;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return F(psum32(a, lo, n2) + psum32(a, lo + n2, n - n2));
}
function psum64(a, lo, n) {
  if (n < 8) {
    let s = -0;
    for (let i = lo; i < lo + n; i++) s = (s + a[i]);
    return s;
  }
  if (n <= 128) {   // eight running sums in locals (an array here was a third of the step's garbage)
    let r0 = a[lo], r1 = a[lo + 1], r2 = a[lo + 2], r3 = a[lo + 3], r4 = a[lo + 4], r5 = a[lo + 5], r6 = a[lo + 6],
      r7 = a[lo + 7], i = 8;
    for (const end = n - (n % 8); i < end; i += 8) {
      const b = lo + i;
      r0 = (r0 + a[b]); r1 = (r1 + a[b + 1]); r2 = (r2 + a[b + 2]); r3 = (r3 + a[b + 3]);
      r4 = (r4 + a[b + 4]); r5 = (r5 + a[b + 5]); r6 = (r6 + a[b + 6]); r7 = (r7 + a[b + 7]);
    }
    let s = (((r0 + r1) + (r2 + r3)) + ((r4 + r5) + (r6 + r7)));
    for (; i < n; i++) s = (s + a[lo + i]);
    return s;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return (psum64(a, lo, n2) + psum64(a, lo + n2, n - n2));
}
const mean32 = (a) => F(psum32(a, 0, a.length) / a.length);   // ndarray.mean() of a float32 array
const mean64 = (a) => psum64(a, 0, a.length) / a.length;

function median64(a) {  // np.median: the mean of the two middle values for an even count
  const s = Float64Array.from(a).sort(), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// cv2.cvtColor(np.clip(a, 0, 255).astype(np.uint8), COLOR_RGB2GRAY).astype(np.float32)
function grey(cv, rgb, h, w) {
  const src = new cv.Mat(h, w, cv.CV_8UC3), dst = new cv.Mat();
  try {
    const d = src.data;
    for (let i = 0; i < rgb.length; i++) d[i] = Math.trunc(Math.min(Math.max(rgb[i], 0), 255));  // astype truncates
    cv.cvtColor(src, dst, cv.COLOR_RGB2GRAY);
    return Float32Array.from(dst.data);
  } finally {
    src.delete();
    dst.delete();
  }
}

// _photometric: a * q + b per channel, least squares to m, refitted without the pixels 3 robust sigmas off
function photometric(q, m, n) {
  const out = new Float32Array(n * 3), x = new Float32Array(n), t = new Float32Array(n), r = new Float64Array(n);
  for (let c = 0; c < 3; c++) {
    for (let i = 0; i < n; i++) { x[i] = q[3 * i + c]; t[i] = m[3 * i + c]; }
    let keep = null, a = 0, b = 0;
    for (let pass = 0; pass < 2; pass++) {
      let xk = x, tk = t;
      if (keep) {  // x[keep], t[keep]
        let k = 0;
        for (let i = 0; i < n; i++) k += keep[i];
        xk = new Float32Array(k);
        tk = new Float32Array(k);
        for (let i = 0, j = 0; i < n; i++) if (keep[i]) { xk[j] = x[i]; tk[j++] = t[i]; }
      }
      const k = xk.length;
      // np.cov(xk, tk, bias=True)[0, 1] is float64 (float64 means, products times 1/k) ...
      const mx = mean64(xk), mt = mean64(tk);
      let s = 0;
      for (let i = 0; i < k; i++) s += (xk[i] - mx) * (tk[i] - mt);
      const cov = s * (1 / k);
      // ... xk.var() and the means are float32 (pairwise sums in float32)
      const mx32 = mean32(xk), sq = new Float32Array(k);
      for (let i = 0; i < k; i++) { const d = F(xk[i] - mx32); sq[i] = d * d; }
      a = cov / Math.max(mean32(sq), 1e-6);
      b = mean32(tk) - a * mx32;
      if (pass === 1) break;  // Python's last keep is never used
      for (let i = 0; i < n; i++) r[i] = Math.abs(a * x[i] + b - t[i]);
      const lim = 3 * (1.4826 * median64(r) + 1e-3);
      keep = new Uint8Array(n);
      for (let i = 0; i < n; i++) keep[i] = r[i] < lim ? 1 : 0;
    }
    for (let i = 0; i < n; i++) out[3 * i + c] = a * x[i] + b;
  }
  return out;
}

function sub32(a, b) {  // float32 a - b
  const o = new Float32Array(a.length);
  for (let i = 0; i < a.length; i++) o[i] = a[i] - b[i];
  return o;
}
function sqmean(d) {  // float(np.mean(d * d)), all float32
  const s = new Float32Array(d.length);
  for (let i = 0; i < d.length; i++) s[i] = d[i] * d[i];
  return mean32(s);
}
const highPass = (cv, d, h, w, sigma) => sub32(d, blur(cv, d, h, w, 3, sigma));

// what a model keeps between photos: high_passes(median) and ECC's blurred grey template
const CACHE = new WeakMap();
function prepared(cv, model, h, w, k) {
  let c = CACHE.get(model);
  if (!c) {
    const m = model.median;
    const ref = [highPass(cv, m, h, w, k.high_pass)];
    for (const s of k.blurs) ref.push(highPass(cv, blur(cv, m, h, w, 3, s), h, w, k.high_pass));
    c = { ref, tmpl: blur(cv, grey(cv, m, h, w), h, w, 1, 0, 3) };
    CACHE.set(model, c);
  }
  return c;
}

/** infer/variation.evidence(model, face, stride): {score, cells (cellsH x cellsW float32), cellsH, cellsW}. */
export function variationEvidence(cv, face, h, w, model, constants, stride = 4) {
  const n = h * w, k = constants, { ref, tmpl } = prepared(cv, model, h, w, k);
  // residual(): refine onto the median (ECC homography, then the warp), photometric fit, sharpness-matched high-pass
  let q = Float32Array.from(face);
  const H = ecc(cv, tmpl, grey(cv, q, h, w), h, w);
  if (H) q = warp(q, h, w, 3, H, true);  // else: ECC did not converge, keep the alignment
  q = photometric(q, model.median, n);
  const hq = highPass(cv, q, h, w, k.high_pass);
  let d = sub32(hq, ref[0]), best = sqmean(d);
  k.blurs.forEach((s, i) => {  // the sharper of the two is blurred to the other
    const blurred = highPass(cv, blur(cv, q, h, w, 3, s), h, w, k.high_pass);
    for (const hp of [sub32(blurred, ref[0]), sub32(hq, ref[i + 1])]) {
      const e = sqmean(hp);
      if (e < best) { best = e; d = hp; }
    }
  });
  // z_map (luminance, chroma R G B over the spread) and _strength, in float32 as numpy
  const zz = new Float32Array(n), sp = model.spread;
  for (let i = 0; i < n; i++) {
    const lum = F(F(F(d[3 * i] + d[3 * i + 1]) + d[3 * i + 2]) / 3);
    const z0 = F(Math.abs(lum) / sp[4 * i]);
    let s = 0;
    for (let c = 0; c < 3; c++) {
      const z = F(Math.abs(F(d[3 * i + c] - lum)) / sp[4 * i + 1 + c]);
      s = F(s + F(z * z));
    }
    zz[i] = Math.max(z0, F(F(k.chroma_weight) * F(Math.sqrt(F(s / 3)))));  // a Python float times float32: float32
  }
  // _pool: log of the mean of the top share (float32 mean, + 1e-6 in float32)
  const top = Math.max(1, Math.floor(k.top * n));
  const sorted = Float32Array.from(zz).sort().subarray(n - top);
  const pool = F(Math.log(F(mean32(sorted) + F(1e-6))));
  // cells: max over stride x stride
  const cellsH = Math.floor(h / stride), cellsW = Math.floor(w / stride), cells = new Float32Array(cellsH * cellsW);
  for (let y = 0; y < cellsH * stride; y++) {
    for (let x = 0; x < cellsW * stride; x++) {
      const j = Math.floor(y / stride) * cellsW + Math.floor(x / stride);
      cells[j] = Math.max(cells[j], zz[y * w + x]);
    }
  }
  return { score: (pool - model.centre) / model.scale, cells, cellsH, cellsW };
}
