// Rectification on the page: find the product's face in a photo and warp it into its template's frame.
// The port of infer/rectify.py with one difference: OpenCV.js has no SIFT, so photos and templates are matched by
// ORB (templates' ORB keypoints are computed by `genuine page build`, docs/page.md). Identification is the Python
// inspector's whole-face route (inliers + edge agreement with the template + no rival product), or the declared
// product; every constant comes from site.json (constants.rectify = infer.rectify.LIMITS).
//
//   const r = rectify(cv, rgb, site, templates, {product: null});   // rgb: cv.Mat CV_8UC3 (the decoded photo)
//   r.ok, r.product, r.reason, r.H (template px -> photo px), r.face (cv.Mat, caller deletes)

import { words, queryKeys } from "./match.js";
import { blur, ecc, warp } from "./ecc.js";

export class Gc {   // every cv.Mat made in a step is freed at its end: the page inspects hundreds of photos
  constructor() { this.items = []; }
  add(m) { this.items.push(m); return m; }
  free() { for (const m of this.items.splice(0)) { try { m.delete(); } catch (e) { /* already freed */ } } }
}

// Python's round(): half to even (round(2.5) == 2), so sizes match infer/rectify.py's to the pixel.
export function pyRound(x) {
  const r = Math.round(x);
  return Math.abs(x % 1) === 0.5 && r % 2 !== 0 ? r - 1 : r;
}

// ---- 3x3 homographies as row-major arrays of 9 numbers (float64, as numpy) ----
export const mul = (A, B) => {
  const C = new Array(9).fill(0);
  for (let i = 0; i < 3; i++) for (let j = 0; j < 3; j++) for (let k = 0; k < 3; k++) C[3 * i + j] += A[3 * i + k] * B[3 * k + j];
  return C;
};
export function inv(M) {
  const [a, b, c, d, e, f, g, h, i] = M;
  const A = e * i - f * h, B = -(d * i - f * g), C = d * h - e * g;
  const det = a * A + b * B + c * C;
  return [A / det, -(b * i - c * h) / det, (b * f - c * e) / det,
          B / det, (a * i - c * g) / det, -(a * f - c * d) / det,
          C / det, -(a * h - b * g) / det, (a * e - b * d) / det];
}
export const pixelScaling = (s, sy = s) => [s, 0, 0.5 * s - 0.5, 0, sy, 0.5 * sy - 0.5, 0, 0, 1];
export function project(H, pts) {   // [[x, y], ...] -> [[x', y'], ...]
  return pts.map(([x, y]) => {
    const w = H[6] * x + H[7] * y + H[8];
    return [(H[0] * x + H[1] * y + H[2]) / w, (H[3] * x + H[4] * y + H[5]) / w];
  });
}
export const frameCorners = (w, h) => [[-0.5, -0.5], [w - 0.5, -0.5], [w - 0.5, h - 0.5], [-0.5, h - 0.5]];
const matOf = (cv, H) => cv.matFromArray(3, 3, cv.CV_64F, H);

export function faceSize(size, side) {
  const [w, h] = size;
  const s = !side ? 1 : Math.min(1, side / Math.max(w, h));
  return [Math.max(1, pyRound(w * s)), Math.max(1, pyRound(h * s))];
}

// infer.keypoints.shrink: long side at most `side`, area averaging, never upsampled. Returns [mat, scale, owned].
export function shrink(cv, rgb, side) {
  const s = Math.min(1, side / Math.max(rgb.rows, rgb.cols));
  if (s >= 1) return [rgb, 1, false];
  const out = new cv.Mat();
  cv.resize(rgb, out, new cv.Size(Math.max(1, pyRound(rgb.cols * s)), Math.max(1, pyRound(rgb.rows * s))), 0, 0, cv.INTER_AREA);
  return [out, s, true];
}

// page_build.to_side: long side at `side` both ways (area averaging down, bilinear up): ORB has no SIFT's doubled
// first octave, and a 348 px shop photo described at 512 px holds several times the inliers. [mat, scale, owned].
export function toSide(cv, rgb, side) {
  const s = side / Math.max(rgb.rows, rgb.cols);
  if (s <= 1) return shrink(cv, rgb, side);
  const out = new cv.Mat();
  cv.resize(rgb, out, new cv.Size(Math.max(1, pyRound(rgb.cols * s)), Math.max(1, pyRound(rgb.rows * s))), 0, 0, cv.INTER_LINEAR);
  return [out, s, true];
}

function polygonArea(c) {
  let a = 0;
  for (let k = 0; k < c.length; k++) { const [x0, y0] = c[k], [x1, y1] = c[(k + 1) % c.length]; a += x0 * y1 - x1 * y0; }
  return Math.abs(a) / 2;
}

// ---- the photo's ORB keypoints, and one template's fit ----
export function describe(cv, grey, orb) {
  const o = new cv.ORB(orb.nfeatures, orb.scaleFactor, orb.nlevels, 31, 0, 2, 0, 31, orb.fastThreshold);
  const kv = new cv.KeyPointVector(), desc = new cv.Mat(), none = new cv.Mat();
  try {
    o.detectAndCompute(grey, none, kv, desc);
    const n = kv.size(), pts = new Float64Array(2 * n);
    for (let i = 0; i < n; i++) { const p = kv.get(i).pt; pts[2 * i] = p.x; pts[2 * i + 1] = p.y; }
    const w = words(Uint8Array.from(desc.data));
    return { pts, desc, n, words: w, keys: queryKeys(w, n) };
  } finally { o.delete(); kv.delete(); none.delete(); }
}

// Each photo keypoint's nearest descriptor in template t (match.js: LSH, not brute force) with its distance, and the
// ratio-test matches (Lowe's 0.75): what _fit matches on and what the distinctive evidence compares across products.
function nearest(photo, t, C) {
  const b0 = new Int32Array(photo.n).fill(-1), d0 = new Int32Array(photo.n).fill(257), q = [], k = [];
  for (let i = 0; i < photo.n && t.n >= 2; i++) {
    const [c0, e0, c1, e1] = t.index.knn2(photo.words, i, photo.keys);
    b0[i] = c0; d0[i] = e0;
    if (c1 >= 0 && e0 < C.ratio * e1) { q.push(i); k.push(c0); }
  }
  return { b0, d0, q, k };
}

// _homography: MAGSAC homography template -> photo (matching scale) from matches; inliers and their median error.
// polish > 0 (a face fit; infer/orb.py homography()): matches in a shared order, then least squares on the inliers, inliers re-read at magsac_px, up
// to `polish` rounds, to the fixed point Python reaches from its own (a bit or two apart) ORB descriptors.
export function homography(cv, photo, t, q, k, C, polish = 0) {
  const gc = new Gc();
  try {
    if (q.length < 4) return { H: null, inliers: 0, matches: q.length, err: 0 };
    if (polish > 0) {   // a face fit: matches in the order Python uses (photo keypoint x, y, template keypoint; orb.py)
      const P = photo.pts, o = q.map((_, i) => i).sort((a, b) =>
        (P[2 * q[a]] - P[2 * q[b]]) || (P[2 * q[a] + 1] - P[2 * q[b] + 1]) || (k[a] - k[b]));
      [q, k] = [o.map(i => q[i]), o.map(i => k[i])];
    }
    const src = [], dst = [];
    for (let i = 0; i < q.length; i++) { src.push(t.pts[2 * k[i]], t.pts[2 * k[i] + 1]); dst.push(photo.pts[2 * q[i]], photo.pts[2 * q[i] + 1]); }
    const mask = gc.add(new cv.Mat());
    const Hm = gc.add(cv.findHomography(gc.add(cv.matFromArray(q.length, 1, cv.CV_64FC2, src)),
      gc.add(cv.matFromArray(q.length, 1, cv.CV_64FC2, dst)), cv.USAC_MAGSAC, C.magsac_px, mask, 2000, 0.999));
    if (Hm.empty() || Hm.rows !== 3) return { H: null, inliers: 0, matches: q.length, err: 0 };
    let H = Array.from(Hm.data64F), inl = Array.from(mask.data.subarray(0, q.length), v => v !== 0);
    const dist = (M, i) => { const [[x, y]] = project(M, [[src[2 * i], src[2 * i + 1]]]); return Math.hypot(x - dst[2 * i], y - dst[2 * i + 1]); };
    for (let round = 0; round < polish; round++) {
      const s = [], d = [];
      inl.forEach((v, i) => { if (v) { s.push(src[2 * i], src[2 * i + 1]); d.push(dst[2 * i], dst[2 * i + 1]); } });
      if (s.length < 8) break;
      const H2m = gc.add(cv.findHomography(gc.add(cv.matFromArray(s.length / 2, 1, cv.CV_64FC2, s)),
        gc.add(cv.matFromArray(d.length / 2, 1, cv.CV_64FC2, d)), 0));
      if (H2m.empty() || H2m.rows !== 3) break;
      const H2 = Array.from(H2m.data64F), now = inl.map((_, i) => dist(H2, i) < C.magsac_px);
      const same = now.every((v, i) => v === inl[i]);
      H = H2; inl = now;
      if (same) break;
    }
    const errs = [];
    inl.forEach((v, i) => { if (v) errs.push(dist(H, i)); });
    return { H, inliers: errs.length, matches: q.length, err: median(errs) };
  } finally { gc.free(); }
}

// _evidence: which products the photo shows by distinctive keypoints. A keypoint counts for the product of its
// nearest descriptor when that is nearer than distinct_ratio x the nearest of any other product; each product's
// number is its best template's homography inliers among its distinctive matches, for the `shortlist` products with
// most of them. Returns [ranked [[product, inliers]], raw (products by nearest-descriptor votes)].
function evidence(cv, photo, pool, near, C) {
  const products = [...new Set(pool.map(t => t.product))].sort();
  const pairs = pool.map(() => ({ q: [], k: [] })), votes = new Map(products.map(p => [p, 0]));
  for (let i = 0; i < photo.n; i++) {
    let bt = -1;
    for (let j = 0; j < pool.length; j++) if (near[j].b0[i] >= 0 && (bt < 0 || near[j].d0[i] < near[bt].d0[i])) bt = j;
    if (bt < 0) continue;
    const p0 = pool[bt].product;
    votes.set(p0, votes.get(p0) + 1);
    let other = 257;
    for (let j = 0; j < pool.length; j++) if (pool[j].product !== p0 && near[j].b0[i] >= 0) other = Math.min(other, near[j].d0[i]);
    if (other < 257 && near[bt].d0[i] >= C.distinct_ratio * other) continue;
    for (let j = 0; j < pool.length; j++) {
      if (pool[j].product === p0 && near[j].b0[i] >= 0) { pairs[j].q.push(i); pairs[j].k.push(near[j].b0[i]); }
    }
  }
  const per = new Map();
  pairs.forEach((pr, j) => per.set(pool[j].product, (per.get(pool[j].product) || 0) + pr.q.length));
  const keep = new Set([...per.keys()].sort((a, b) => per.get(b) - per.get(a)).slice(0, C.shortlist));
  const best = new Map();
  pairs.forEach((pr, j) => {
    const p = pool[j].product;
    if (!keep.has(p)) return;
    // MAGSAC's consensus among all distinctive pairs, and among those that also pass the ratio test: ORB's nearest
    // descriptors are mostly chance pairs on a real photo (50 true among 3000), where 2000 iterations miss the
    // consensus that the ratio-tested subset shows plainly. Inliers of a subset are still inliers among them all.
    const rt = new Set(near[j].q), sq = [], sk = [];
    pr.q.forEach((i, m) => { if (rt.has(i)) { sq.push(i); sk.push(pr.k[m]); } });
    const n = Math.max(homography(cv, photo, pool[j], pr.q, pr.k, C).inliers,
                       homography(cv, photo, pool[j], sq, sk, C).inliers);
    if (!best.has(p) || n > best.get(p)) best.set(p, n);
  });
  const ranked = [...best.entries()].sort((a, b) => b[1] - a[1]);
  const raw = products.filter(p => votes.get(p) > 0).sort((a, b) => votes.get(b) - votes.get(a)).slice(0, C.shortlist);
  return [ranked, raw];
}

export function median(a) {
  if (!a.length) return 0;
  const s = Float64Array.from(a).sort(), m = s.length >> 1;
  return s.length % 2 ? s[m] : (s[m - 1] + s[m]) / 2;
}

// _geometry: not folded or mirrored, plausible area and aspect, mostly inside the photo.
export function geometry(H, size, photoWH, lim) {
  const [w, h] = size, [pw, ph] = photoWH;
  const c = project(H, frameCorners(w, h));
  const edges = c.map((p, k) => [c[(k + 1) % 4][0] - p[0], c[(k + 1) % 4][1] - p[1]]);
  const cross = edges.map((e, k) => e[0] * edges[(k + 1) % 4][1] - e[1] * edges[(k + 1) % 4][0]);
  const area = polygonArea(c);
  const info = { corners: c, area: area / (pw * ph), scale: Math.sqrt(area / (w * h)) };
  let inside = 0;
  for (let i = 0; i < 24; i++) for (let j = 0; j < 24; j++) {
    const [[x, y]] = project(H, [[(w - 1) * j / 23, (h - 1) * i / 23]]);
    if (x >= -0.5 && x <= pw - 0.5 && y >= -0.5 && y <= ph - 0.5) inside++;
  }
  info.visible = inside / 576;
  if (!cross.every(v => v > 0)) return ["misaligned", info];
  const sides = edges.map(e => Math.hypot(e[0], e[1]));
  const aspect = ((sides[0] + sides[2]) / 2) / Math.max(1e-6, (sides[1] + sides[3]) / 2) / (w / h);
  if (!(1 / lim.max_aspect_change <= aspect && aspect <= lim.max_aspect_change)) return ["misaligned", info];
  if (info.area < lim.min_area) return ["small", info];
  if (info.visible < lim.min_visible) return ["cut", info];
  return [null, info];
}

// warp_face: the photo's pixels in the template's frame at faceSize(side), supersampled as Python does.
export function warpFace(cv, photo, H, t, side, pad) {
  const gc = new Gc();
  try {
    const [fw, fh] = faceSize(t.size, side);
    let Hf = mul(H, inv(pixelScaling(fw / t.size[0])));
    const area = polygonArea(project(H, frameCorners(t.size[0], t.size[1])).map(p => [Math.fround(p[0]), Math.fround(p[1])]));
    const density = Math.sqrt(area / (fw * fh));
    const over = density >= 1.5 ? 2 : 1;
    Hf = mul(Hf, inv(pixelScaling(over)));
    const k = 1.5 * over / density;
    let src = photo;
    if (k < 0.8) {
      src = gc.add(new cv.Mat());
      cv.resize(photo, src, new cv.Size(Math.max(1, pyRound(photo.cols * k)), Math.max(1, pyRound(photo.rows * k))), 0, 0, cv.INTER_AREA);
      Hf = mul(pixelScaling(k), Hf);
    }
    const face = new cv.Mat();
    cv.warpPerspective(src, face, gc.add(matOf(cv, Hf)), new cv.Size(fw * over, fh * over),
      cv.INTER_LINEAR | cv.WARP_INVERSE_MAP, cv.BORDER_CONSTANT, new cv.Scalar(pad, pad, pad, 255));
    if (over === 1) return face;
    const out = new cv.Mat();
    cv.resize(face, out, new cv.Size(fw, fh), 0, 0, cv.INTER_AREA);
    face.delete();
    return out;
  } finally { gc.free(); }
}

// _inside: (fh, fw) uint8 mask, 255 where a face of that size in t's frame has photo pixels.
function insideMask(cv, rows, cols, H, t, fw, fh) {
  const gc = new Gc();
  try {
    const Hf = mul(H, inv(pixelScaling(fw / t.size[0], fh / t.size[1])));
    const ones = gc.add(new cv.Mat(rows, cols, cv.CV_8UC1, new cv.Scalar(255)));
    const out = new cv.Mat();
    cv.warpPerspective(ones, out, gc.add(matOf(cv, Hf)), new cv.Size(fw, fh), cv.INTER_NEAREST | cv.WARP_INVERSE_MAP,
      cv.BORDER_CONSTANT, new cv.Scalar(0));
    return out;
  } finally { gc.free(); }
}

function edgeMap(cv, rgb) {   // hypot of Sobel x and y on the float32 grey image
  const gc = new Gc();
  try {
    const g8 = gc.add(new cv.Mat()), g = gc.add(new cv.Mat()), dx = gc.add(new cv.Mat()), dy = gc.add(new cv.Mat());
    cv.cvtColor(rgb, g8, cv.COLOR_RGB2GRAY);
    g8.convertTo(g, cv.CV_32F);
    cv.Sobel(g, dx, cv.CV_32F, 1, 0);
    cv.Sobel(g, dy, cv.CV_32F, 0, 1);
    const a = dx.data32F, b = dy.data32F, out = new Float32Array(a.length);
    for (let i = 0; i < a.length; i++) out[i] = Math.hypot(a[i], b[i]);
    return out;
  } finally { gc.free(); }
}

// agreement: correlation of the edge maps of the aligned face and the template (96 px), over the part inside the photo.
export function agreement(cv, small, H, t, side = 96) {
  const gc = new Gc();
  try {
    const [fw, fh] = faceSize(t.size, side);
    if (!t.edges96) {
      const r = gc.add(new cv.Mat());
      cv.resize(t.image, r, new cv.Size(fw, fh), 0, 0, cv.INTER_AREA);
      t.edges96 = edgeMap(cv, r);
    }
    const inside = gc.add(insideMask(cv, small.rows, small.cols, H, t, fw, fh)), er = gc.add(new cv.Mat());
    cv.erode(inside, er, gc.add(cv.Mat.ones(3, 3, cv.CV_8U)));
    let n = 0;
    for (let i = 0; i < er.data.length; i++) if (er.data[i]) n++;
    if (n < 0.25 * fw * fh) return 0;
    const a = edgeMap(cv, gc.add(warpFace(cv, small, H, t, side, 114))), b = t.edges96;
    const pick = (x) => { const o = new Float64Array(n); let j = 0; for (let i = 0; i < x.length; i++) if (er.data[i]) o[j++] = x[i]; return o; };
    const A = pick(a), B = pick(b);
    const stats = (x) => { let m = 0; for (const v of x) m += v; m /= x.length; let s = 0; for (const v of x) s += (v - m) ** 2; return [m, Math.sqrt(s / x.length)]; };
    const [ma, sa] = stats(A), [mb, sb] = stats(B);
    let c = 0;
    for (let i = 0; i < n; i++) c += ((A[i] - ma) / (sa + 1e-6)) * ((B[i] - mb) / (sb + 1e-6));
    return c / n;
  } finally { gc.free(); }
}

// _fill_outside: pixels of the face that lie outside the photo taken from the template (no evidence either way).
export function fillOutside(cv, face, rows, cols, H, t) {
  const gc = new Gc();
  try {
    const inside = gc.add(insideMask(cv, rows, cols, H, t, face.cols, face.rows));
    let all = true;
    for (let i = 0; i < inside.data.length; i++) if (!inside.data[i]) { all = false; break; }
    if (all) return face;
    const ref = gc.add(new cv.Mat());
    cv.resize(t.image, ref, new cv.Size(face.cols, face.rows), 0, 0, cv.INTER_AREA);
    for (let i = 0; i < inside.data.length; i++) {
      if (!inside.data[i]) for (let c = 0; c < 3; c++) face.data[3 * i + c] = ref.data[3 * i + c];
    }
    return face;
  } finally { gc.free(); }
}

// refine: the keypoint homography refined by ECC, as infer/rectify.py refine(): the comparator reads a pixel of
// misalignment as a difference. The photo's grey warp and ECC itself are OpenCV 5's, ported (ecc.js): from the same
// start OpenCV.js 4.12's own findTransformECC settled up to 2 px away from cv2's (tests/test_orb.py).
// Returns [H, moved template px] or [H unchanged, -1] where ECC fails or moves the face implausibly far.
export function refine(cv, rgb, H, t, E) {
  const gc = new Gc();
  try {
    const k = Math.min(1, E.side / Math.max(t.size[0], t.size[1]));
    const [small, s, owned] = shrink(cv, rgb, 2 * E.side);
    if (owned) gc.add(small);
    const T = pixelScaling(k), P = pixelScaling(s), A = mul(mul(P, H), inv(T));
    const w = Math.max(1, pyRound(t.size[0] * k)), h = Math.max(1, pyRound(t.size[1] * k));
    const key = `${w}x${h}:${E.blur}`;
    if (!t.ecc || t.ecc.key !== key) {   // the template's blurred grey at ECC's size, once per template
      let tw = t.image;
      if (k < 1) { tw = gc.add(new cv.Mat()); cv.resize(t.image, tw, new cv.Size(w, h), 0, 0, cv.INTER_AREA); }
      t.ecc = { key, T: blur(cv, grey01(cv, tw), h, w, 1, 0, E.blur) };
    }
    const warped = warp(grey01(cv, small), h, w, 1, A, false, small.rows, small.cols);
    const Wd = ecc(cv, t.ecc.T, warped, h, w, E.iterations, E.eps, E.blur);
    if (!Wd) return [H, -1];   // cv2 raises: did not converge
    const c = frameCorners(w, h), pc = project(Wd, c);
    const moved = Math.max(...c.map((p, i) => Math.hypot(pc[i][0] - p[0], pc[i][1] - p[1]))) / k;
    if (!Number.isFinite(moved) || moved > E.max_move * Math.hypot(t.size[0], t.size[1])) return [H, -1];
    return [mul(mul(mul(inv(P), A), Wd), T), moved];
  } finally { gc.free(); }
}

// grey / 255 as float32, as numpy: cvtColor(RGB2GRAY).astype(float32) / 255 (a division per pixel)
function grey01(cv, rgb) {
  const g8 = new cv.Mat();
  try {
    cv.cvtColor(rgb, g8, cv.COLOR_RGB2GRAY);
    const d = g8.data, out = new Float32Array(d.length);
    for (let i = 0; i < d.length; i++) out[i] = d[i] / 255;   // a Float32Array store rounds once, as numpy does
    return out;
  } finally { g8.delete(); }
}

function faceOk(f, lim, minInliers) {
  return f.H !== null && f.inliers >= minInliers && f.inliers >= lim.min_inlier_ratio * f.matches
    && f.err <= lim.max_reproj_px && f.code !== "misaligned";
}

// rectify: which product (among `templates`, or only the declared `product`'s) and where its face is, as
// infer/rectify.py rectify() decides it: distinctive evidence first, then the whole-face route.
// rgb: the decoded photo (cv.Mat CV_8UC3). Returns a plain object shaped like infer.rectify.Rectified.to_dict().
export function rectify(cv, rgb, site, templates, { product = null } = {}) {
  const C = site.constants, advice = site.advice.rectify;
  // ORB names a product only at orb_margin x the runner-up (page_build.ORB_MARGIN: ORB tells look-alikes apart less well)
  const lim = { ...C.rectify, margin: Math.max(C.rectify.margin, C.orb_margin || 0) };
  const t0 = performance.now();
  const gc = new Gc();
  try {
    const [small, s, owned] = toSide(cv, rgb, C.match_side);
    if (owned) gc.add(small);
    const grey = gc.add(new cv.Mat());
    cv.cvtColor(small, grey, cv.COLOR_RGB2GRAY);
    const photo = describe(cv, grey, C.orb);
    gc.add(photo.desc);
    const toFull = inv(pixelScaling(s));
    const out = { ok: false, product: null, reason_code: null, reason: null, inliers: 0, matches: 0, keypoints: photo.n,
                  H: null, corners: null, scale: 0, visible: 0, reproj_px: 0, area: 0, agreement: 0, density: 0,
                  candidates: [], evidence: 0, identified: null, template: null, closest: null, refined_px: 0, start: null };
    const pool = product ? templates.filter(t => t.product === product) : templates;
    if (product && !pool.length) {
      const known = [...new Set(templates.map(t => t.product))].sort().join(", ");
      return { ...out, reason_code: "not_covered", reason: `product '${product}' has no template; known: ${known}`,
               seconds: (performance.now() - t0) / 1000 };
    }
    const near = pool.map(t => nearest(photo, t, C));
    const [ranked, raw] = photo.n >= 8 ? evidence(cv, photo, pool, near, C) : [[], []];
    out.candidates = ranked.slice(0, 3);
    out.evidence = ranked.length ? ranked[0][1] : 0;
    const runnerUp = ranked.length > 1 ? ranked[1][1] : 0;
    // _face_fits: face templates of these products fitted on all their ratio-test matches, best first
    const faceFits = (products) => pool.map((t, j) => [t, j]).filter(([t]) => !t.view && products.has(t.product)).map(([t, j]) => {
      const f = { ...homography(cv, photo, t, near[j].q, near[j].k, C, C.polish || 0), t };
      if (f.H === null) return { ...f, code: "misaligned", info: {}, agree: 0 };
      const [code, info] = geometry(mul(toFull, f.H), t.size, [rgb.cols, rgb.rows], lim);
      return { ...f, code, info, agree: code !== "misaligned" ? agreement(cv, small, f.H, t) : 0 };
    }).sort((a, b) => b.inliers - a.inliers);
    let named = null, code = null, extra = "", chosen = null;
    if (ranked.length && ranked[0][1] >= lim.min_evidence && ranked[0][1] >= lim.margin * runnerUp) {
      named = ranked[0][0];   // _by_evidence: named by its distinctive keypoints; its face need only align
      const fits = faceFits(new Set([named]));
      chosen = fits.find(f => faceOk(f, lim, lim.min_face_inliers)) || null;
      if (!chosen) {
        code = "misaligned";
        if (fits.length) Object.assign(out, { inliers: fits[0].inliers, matches: fits[0].matches, reproj_px: fits[0].err });
      }
    } else {   // _by_whole_face: a face that aligns and agrees with its template as a whole, and no rival
      const tried = faceFits(new Set([...ranked.slice(0, 2).map(r => r[0]), ...raw]));
      const whole = tried.filter(f => faceOk(f, lim, lim.min_inliers) && f.agree >= lim.min_agreement);
      if (whole.length) {
        chosen = whole[0]; named = chosen.t.product;
        const rival = whole.slice(1).find(f => f.t.product !== named && f.inliers >= C.rival_ratio * chosen.inliers && f.agree >= chosen.agree - 0.05);
        if (rival) { code = "ambiguous"; extra = ` (${named}: ${chosen.inliers} inliers, ${rival.t.product}: ${rival.inliers})`; named = null; }
      } else if (ranked.length && ranked[0][1] >= lim.min_evidence) {
        code = "ambiguous";
        extra = ` (${ranked[0][0]}: ${ranked[0][1]} distinctive keypoints, ${ranked[1][0]}: ${runnerUp}; ${lim.margin}x needed)`;
      } else {
        out.inliers = tried.length ? Math.max(...tried.map(f => f.inliers)) : 0;
        code = photo.n >= lim.not_covered_keypoints ? "not_covered" : "no_package";
        if (product && code === "not_covered") code = "misaligned";
      }
    }
    out.identified = named;
    if (chosen && code !== "ambiguous") {
      const H = mul(toFull, chosen.H), info = chosen.info;
      Object.assign(out, { product: named, inliers: chosen.inliers, matches: chosen.matches, reproj_px: chosen.err, H,
                           corners: info.corners, area: info.area, scale: info.scale, visible: info.visible,
                           agreement: chosen.agree, template: chosen.t, start: "orb" });
      code = chosen.code;
      if (code === null) {
        out.ok = true;
        if (C.ecc.refine) {
          [out.H, out.refined_px] = refine(cv, rgb, H, chosen.t, C.ecc);
          out.corners = project(out.H, frameCorners(chosen.t.size[0], chosen.t.size[1]));
        }
      }
    }
    if (code !== null) {
      out.reason_code = code;
      out.reason = advice[code] + extra;
      if (named !== null && code !== "ambiguous") { out.product = named; out.reason = `${named}: ${out.reason}`; }
      if (code === "not_covered" && out.candidates.length && out.candidates[0][1] >= 4) out.reason = unrecognised(out.candidates, lim);
      out.closest = out.candidates.length ? out.candidates[0][0] : null;
    }
    out.seconds = (performance.now() - t0) / 1000;
    return out;
  } finally { gc.free(); }
}

function unrecognised(cands, lim) {
  const [closest, n] = cands[0], n2 = cands.length > 1 ? cands[1][1] : 0;
  return `product not covered, or not recognised: the closest template is ${closest} (${n} distinctive keypoints, `
    + `runner-up ${n2}; ${lim.min_evidence} and ${lim.margin}x needed). If it is ${closest}, retake it square-on, in `
    + `focus and filling the frame, or name it (the product list above); if not, it has no template on this page`;
}

// alignment quality, as Rectified.quality: inliers, their error, how much of the face is in the photo
export function alignmentQuality(r) {
  if (!r.H) return 0;
  return Math.min(1, r.inliers / 60) * Math.min(1, r.visible) * Math.exp(-r.reproj_px / 4);
}
