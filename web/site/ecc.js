// OpenCV 5's findTransformECC (MOTION_HOMOGRAPHY) and the warps around it, ported to JavaScript: what Python's cv2
// (5.x) computes, where OpenCV.js 4.12 computes something else. Its warps interpolate with weights quantised to
// 1/32 px (0.02 to 0.07 grey levels apart on a smooth image, against cv2's exact bilinear weights) and its
// findTransformECC warps inside its loop: from the same start, cv.findTransformECC and cv2's settled up to 2 px apart
// on a face (tests/test_orb.py). The genuine variation (variation.js) and the rectification's refinement
// (rectify.js refine) both use these, so the page lands where Python does.
//
//   import { ecc, warp, blur } from "./ecc.js";
//   const W = ecc(cv, blur(cv, T, h, w, 1, 0, gauss), inputGrey, h, w, iters, eps, gauss);   // null: cv2 raises
//
// float32 where cv2 works in float32 (Math.fround), float64 where it accumulates in double.

export const F = Math.fround;

export function dot(a, b, n, ao = 0, bo = 0) {
  let s = 0;
  for (let i = 0; i < n; i++) s += a[ao + i] * b[bo + i];
  return s;
}

// ECC's Hessian: the 8 x 8 Gram matrix of the Jacobian's planes, the 36 dot() sums in one pass over the pixels. Each
// sum adds the same products in the same order as dot(), so the result is bit for bit the same; one pass instead of
// 36 was half of the variation step's time in the browser.
export function gram8(J, n, H) {
  let s00 = 0, s01 = 0, s02 = 0, s03 = 0, s04 = 0, s05 = 0, s06 = 0, s07 = 0, s11 = 0, s12 = 0, s13 = 0, s14 = 0, s15 = 0, s16 = 0, s17 = 0, s22 = 0, s23 = 0, s24 = 0, s25 = 0, s26 = 0, s27 = 0, s33 = 0, s34 = 0, s35 = 0, s36 = 0, s37 = 0, s44 = 0, s45 = 0, s46 = 0, s47 = 0, s55 = 0, s56 = 0, s57 = 0, s66 = 0, s67 = 0, s77 = 0;
  for (let k = 0; k < n; k++) {
    const j0 = J[k], j1 = J[1 * n + k], j2 = J[2 * n + k], j3 = J[3 * n + k], j4 = J[4 * n + k], j5 = J[5 * n + k], j6 = J[6 * n + k], j7 = J[7 * n + k];
    s00 += j0 * j0; s01 += j0 * j1; s02 += j0 * j2; s03 += j0 * j3; s04 += j0 * j4; s05 += j0 * j5;
    s06 += j0 * j6; s07 += j0 * j7; s11 += j1 * j1; s12 += j1 * j2; s13 += j1 * j3; s14 += j1 * j4;
    s15 += j1 * j5; s16 += j1 * j6; s17 += j1 * j7; s22 += j2 * j2; s23 += j2 * j3; s24 += j2 * j4;
    s25 += j2 * j5; s26 += j2 * j6; s27 += j2 * j7; s33 += j3 * j3; s34 += j3 * j4; s35 += j3 * j5;
    s36 += j3 * j6; s37 += j3 * j7; s44 += j4 * j4; s45 += j4 * j5; s46 += j4 * j6; s47 += j4 * j7;
    s55 += j5 * j5; s56 += j5 * j6; s57 += j5 * j7; s66 += j6 * j6; s67 += j6 * j7; s77 += j7 * j7;
  }
  H[0] = H[0] = s00; H[1] = H[8] = s01; H[2] = H[16] = s02; H[3] = H[24] = s03;
  H[4] = H[32] = s04; H[5] = H[40] = s05; H[6] = H[48] = s06; H[7] = H[56] = s07;
  H[9] = H[9] = s11; H[10] = H[17] = s12; H[11] = H[25] = s13; H[12] = H[33] = s14;
  H[13] = H[41] = s15; H[14] = H[49] = s16; H[15] = H[57] = s17; H[18] = H[18] = s22;
  H[19] = H[26] = s23; H[20] = H[34] = s24; H[21] = H[42] = s25; H[22] = H[50] = s26;
  H[23] = H[58] = s27; H[27] = H[27] = s33; H[28] = H[35] = s34; H[29] = H[43] = s35;
  H[30] = H[51] = s36; H[31] = H[59] = s37; H[36] = H[36] = s44; H[37] = H[44] = s45;
  H[38] = H[52] = s46; H[39] = H[60] = s47; H[45] = H[45] = s55; H[46] = H[53] = s56;
  H[47] = H[61] = s57; H[54] = H[54] = s66; H[55] = H[62] = s67; H[63] = H[63] = s77;
}

// dot(v, plane i of J) for the 8 planes, in one pass (the same order of additions as dot())
export function project8(v, J, n, out) {
  let a0 = 0, a1 = 0, a2 = 0, a3 = 0, a4 = 0, a5 = 0, a6 = 0, a7 = 0;
  for (let k = 0; k < n; k++) {
    const x = v[k];
    a0 += x * J[k]; a1 += x * J[n + k]; a2 += x * J[2 * n + k]; a3 += x * J[3 * n + k];
    a4 += x * J[4 * n + k]; a5 += x * J[5 * n + k]; a6 += x * J[6 * n + k]; a7 += x * J[7 * n + k];
  }
  out[0] = a0; out[1] = a1; out[2] = a2; out[3] = a3; out[4] = a4; out[5] = a5; out[6] = a6; out[7] = a7;
}

// cv.GaussianBlur on a float32 image (1 or 3 channels), default border (reflect 101)
export function blur(cv, data, h, w, cn, sigma, ksize = 0) {
  const src = new cv.Mat(h, w, cn === 1 ? cv.CV_32FC1 : cv.CV_32FC3), dst = new cv.Mat();
  try {
    src.data32F.set(data);
    cv.GaussianBlur(src, dst, new cv.Size(ksize, ksize), sigma, 0, cv.BORDER_DEFAULT);
    return new Float32Array(dst.data32F);
  } finally {
    src.delete();
    dst.delete();
  }
}

export function reflect(p, len) {  // cv::borderInterpolate, BORDER_REFLECT (fedcba|abcdefgh|hgfedcb)
  if (len === 1) return 0;
  while (p < 0 || p >= len) p = p < 0 ? -p - 1 : 2 * len - p - 1;
  return p;
}

// cv2.warpPerspective(src, M, (w, h), INTER_LINEAR | WARP_INVERSE_MAP, borderMode), bit for bit on the parity
// test's images. BORDER_REFLECT: OpenCV 5's warp kernels (float32 coordinates, the row's terms rounded apart, fma
// bilinear, horizontal first). BORDER_CONSTANT (0, inside ECC): cv2 hands it to IPP, which maps in float64 and
// interpolates vertically first (1 ulp off on a few border pixels).
export function warp(src, h, w, cn, M, borderReflect, sh = h, sw = w) {   // dst h x w, src sh x sw
  const dst = new Float32Array(h * w * cn);
  for (let y = 0; y < h; y++) {
    const mx = F(F(M[1] * y) + M[2]), my = F(F(M[4] * y) + M[5]), mw = F(F(M[7] * y) + M[8]);
    for (let x = 0; x < w; x++) {
      let sx, sy;
      if (borderReflect) {
        const sw = F(M[6] * x + mw);
        sx = F(F(M[0] * x + mx) / sw);
        sy = F(F(M[3] * x + my) / sw);
      } else {
        const sw = M[6] * x + M[7] * y + M[8];
        sx = (M[0] * x + M[1] * y + M[2]) / sw;
        sy = (M[3] * x + M[4] * y + M[5]) / sw;
      }
      if (!Number.isFinite(sx) || !Number.isFinite(sy)) continue;
      const ix = Math.floor(sx), iy = Math.floor(sy), ax = F(sx - ix), ay = F(sy - iy);
      if (!borderReflect && (ix < -1 || ix >= sw || iy < -1 || iy >= sh)) continue;  // all four neighbours outside
      // the four neighbours' pixel offsets, once per pixel (-1: outside, reads 0 with BORDER_CONSTANT)
      let i00, i01, i10, i11;
      if (ix >= 0 && iy >= 0 && ix < sw - 1 && iy < sh - 1) {
        i00 = (iy * sw + ix) * cn; i01 = i00 + cn; i10 = i00 + sw * cn; i11 = i10 + cn;
      } else {
        const at = (px, py) => {
          if (px < 0 || py < 0 || px >= sw || py >= sh) {
            if (!borderReflect) return -1;
            px = reflect(px, sw); py = reflect(py, sh);
          }
          return (py * sw + px) * cn;
        };
        i00 = at(ix, iy); i01 = at(ix + 1, iy); i10 = at(ix, iy + 1); i11 = at(ix + 1, iy + 1);
      }
      const o = (y * w + x) * cn;
      for (let c = 0; c < cn; c++) {
        const p0 = i00 < 0 ? 0 : src[i00 + c], p1 = i01 < 0 ? 0 : src[i01 + c];
        const p2 = i10 < 0 ? 0 : src[i10 + c], p3 = i11 < 0 ? 0 : src[i11 + c];
        if (borderReflect) {  // a Float32Array store rounds once: F(a + t * F(b - a)) is an fma
          const v0 = F(p0 + ax * F(p1 - p0)), v1 = F(p2 + ax * F(p3 - p2));
          dst[o + c] = v0 + ay * F(v1 - v0);
        } else {
          const c0 = F(p0 + ay * F(p2 - p0)), c1 = F(p1 + ay * F(p3 - p1));
          dst[o + c] = c0 + ax * F(c1 - c0);
        }
      }
    }
  }
  return dst;
}

// warp(x, h, w, 1, M, false) of three grey images at once (ECC warps the image and its two gradients with the same
// homography each iteration): the coordinates and neighbours computed once, each image interpolated as warp() does.
export function warpGrey3(a, b, c, h, w, M) {
  const n = h * w, da = new Float32Array(n), db = new Float32Array(n), dc = new Float32Array(n);
  const pick = (x, i) => (i < 0 ? 0 : x[i]);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      const sw = M[6] * x + M[7] * y + M[8];
      const sx = (M[0] * x + M[1] * y + M[2]) / sw, sy = (M[3] * x + M[4] * y + M[5]) / sw;
      if (!Number.isFinite(sx) || !Number.isFinite(sy)) continue;
      const ix = Math.floor(sx), iy = Math.floor(sy), ax = F(sx - ix), ay = F(sy - iy);
      if (ix < -1 || ix >= w || iy < -1 || iy >= h) continue;  // all four neighbours outside
      const out = (px, py) => (px < 0 || py < 0 || px >= w || py >= h ? -1 : py * w + px);
      const i00 = out(ix, iy), i01 = out(ix + 1, iy), i10 = out(ix, iy + 1), i11 = out(ix + 1, iy + 1);
      const o = y * w + x;
      const lerp = (src) => {
        const p0 = pick(src, i00), p1 = pick(src, i01), p2 = pick(src, i10), p3 = pick(src, i11);
        const c0 = F(p0 + ay * F(p2 - p0)), c1 = F(p1 + ay * F(p3 - p1));
        return c0 + ax * F(c1 - c0);
      };
      da[o] = lerp(a); db[o] = lerp(b); dc[o] = lerp(c);
    }
  }
  return [da, db, dc];
}

// warpPerspective of an all-ones mask, INTER_NEAREST | WARP_INVERSE_MAP, BORDER_CONSTANT 0 (round half to even)
export function warpMask(h, w, M) {
  const mask = new Uint8Array(h * w);
  const rint = (v) => { const r = Math.round(v); return r - v === 0.5 && r % 2 !== 0 ? r - 1 : r; };
  for (let y = 0; y < h; y++) {
    const mx = F(F(M[1] * y) + M[2]), my = F(F(M[4] * y) + M[5]), mw = F(F(M[7] * y) + M[8]);
    for (let x = 0; x < w; x++) {
      const sw = F(M[6] * x + mw), ix = rint(F(F(M[0] * x + mx) / sw)), iy = rint(F(F(M[3] * x + my) / sw));
      mask[y * w + x] = ix >= 0 && iy >= 0 && ix < w && iy < h ? 1 : 0;
    }
  }
  return mask;
}

// Mat::inv() of a float32 matrix: cv::hal::LU32f (Gaussian elimination, partial pivoting) in float32; singular: 0
export function inv32(H, m) {
  const A = Float32Array.from(H), B = new Float32Array(m * m);
  for (let i = 0; i < m; i++) B[i * m + i] = 1;
  for (let i = 0; i < m; i++) {
    let k = i;
    for (let j = i + 1; j < m; j++) if (Math.abs(A[j * m + i]) > Math.abs(A[k * m + i])) k = j;
    if (Math.abs(A[k * m + i]) < F(1.1920929e-7 * 10)) return new Float32Array(m * m);
    if (k !== i) {
      for (let j = i; j < m; j++) [A[i * m + j], A[k * m + j]] = [A[k * m + j], A[i * m + j]];
      for (let j = 0; j < m; j++) [B[i * m + j], B[k * m + j]] = [B[k * m + j], B[i * m + j]];
    }
    const d = F(-1 / A[i * m + i]);
    for (let j = i + 1; j < m; j++) {
      const alpha = F(A[j * m + i] * d);
      for (let c = i + 1; c < m; c++) A[j * m + c] = A[j * m + c] + F(alpha * A[i * m + c]);
      for (let c = 0; c < m; c++) B[j * m + c] = B[j * m + c] + F(alpha * B[i * m + c]);
    }
  }
  for (let i = m - 1; i >= 0; i--) {
    for (let j = 0; j < m; j++) {
      let s = B[i * m + j];
      for (let c = i + 1; c < m; c++) s = F(s - F(A[i * m + c] * B[c * m + j]));
      B[i * m + j] = s / A[i * m + i];
    }
  }
  return B;
}

export function matvec32(A, v, m) {  // cv::gemm of float32 matrices: double accumulation, float32 result
  const out = new Float32Array(m);
  for (let i = 0; i < m; i++) out[i] = dot(A, v, m, i * m);
  return out;
}

// cv2.findTransformECC(template, input, eye(3), MOTION_HOMOGRAPHY, (EPS | COUNT, iters, eps), None, gauss), ported
// from OpenCV 5's ecc.cpp (no masks). template: the blurred template (ECC blurs it first; the caller caches it).
// Returns the 3x3 homography (float32 values), or null where cv2 raises (NaN, "stopped before its convergence").
export function ecc(cv, T, inputGrey, h, w, iters = 40, eps = 1e-5, gauss = 3) {
  const n = h * w;
  const I = blur(cv, inputGrey, h, w, 1, 0, gauss);
  const gx = new Float32Array(n), gy = new Float32Array(n);  // filter2D with (-0.5, 0, 0.5), reflect 101
  const r101 = (p, len) => (p < 0 ? -p : p >= len ? 2 * len - p - 2 : p);
  for (let y = 0; y < h; y++) {
    for (let x = 0; x < w; x++) {
      gx[y * w + x] = 0.5 * I[y * w + r101(x + 1, w)] - 0.5 * I[y * w + r101(x - 1, w)];
      gy[y * w + x] = 0.5 * I[r101(y + 1, h) * w + x] - 0.5 * I[r101(y - 1, h) * w + x];
    }
  }
  const p = new Float32Array([1, 0, 0, 0, 1, 0, 0, 0]);  // the homography's first 8 entries, row-major
  const J = new Float32Array(8 * n), tz = new Float32Array(n), err = new Float32Array(n);
  const H = new Float32Array(64), ip = new Float32Array(8), tp = new Float32Array(8), ep = new Float32Array(8);
  let rho = -1, lastRho = -eps;
  for (let it = 1; it <= iters && Math.abs(rho - lastRho) >= eps; it++) {
    const M = [p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], 1];
    const [iw, gxw, gyw] = warpGrey3(I, gx, gy, h, w, M);
    const mask = warpMask(h, w, M);
    // meanStdDev over the mask (double sums), then zero-mean where the mask is set (subtract with a mask)
    let cnt = 0, si = 0, sii = 0, st = 0, stt = 0;
    for (let k = 0; k < n; k++) {
      if (!mask[k]) continue;
      cnt++; si += iw[k]; sii += iw[k] * iw[k]; st += T[k]; stt += T[k] * T[k];
    }
    const imgMean = si / cnt, tmpMean = st / cnt;
    const imgVar = Math.max(sii / cnt - imgMean * imgMean, 0), tmpVar = Math.max(stt / cnt - tmpMean * tmpMean, 0);
    const im32 = F(imgMean), tm32 = F(tmpMean);
    tz.fill(0);
    for (let k = 0; k < n; k++) if (mask[k]) { iw[k] = iw[k] - im32; tz[k] = T[k] - tm32; }
    const tmpNorm = Math.sqrt(cnt * tmpVar), imgNorm = Math.sqrt(cnt * imgVar);
    // Jacobian of the homography (WarpHomography::calcJacobian), 8 planes of float32
    for (let y = 0; y < h; y++) {
      for (let x = 0; x < w; x++) {
        const k = y * w + x;
        const den = F(F(x * p[6]) + F(y * p[7]) + 1);
        const hx = F(-F(F(x * p[0]) + F(y * p[1]) + p[2]) / den), hy = F(-F(F(x * p[3]) + F(y * p[4]) + p[5]) / den);
        const gxd = F(gxw[k] / den), gyd = F(gyw[k] / den), t = F(F(hx * gxd) + F(hy * gyd));
        J[k] = gxd * x; J[n + k] = gxd * y; J[2 * n + k] = gxd;
        J[3 * n + k] = gyd * x; J[4 * n + k] = gyd * y; J[5 * n + k] = gyd;
        J[6 * n + k] = t * x; J[7 * n + k] = t * y;
      }
    }
    gram8(J, n, H);
    const Hinv = inv32(H, 8);
    const corr = dot(tz, iw, n);
    lastRho = rho;
    rho = corr / (imgNorm * tmpNorm);
    if (Number.isNaN(rho)) return null;
    project8(iw, J, n, ip);
    project8(tz, J, n, tp);
    const iph = matvec32(Hinv, ip, 8);
    const lambdaN = imgNorm * imgNorm - dot(ip, iph, 8), lambdaD = corr - dot(tp, iph, 8);
    if (lambdaD <= 0) return null;
    const lambda = lambdaN / lambdaD;
    for (let k = 0; k < n; k++) err[k] = lambda * tz[k] - iw[k];
    project8(err, J, n, ep);
    const dp = matvec32(Hinv, ep, 8);
    for (let i = 0; i < 8; i++) p[i] = p[i] + dp[i];
  }
  return [p[0], p[1], p[2], p[3], p[4], p[5], p[6], p[7], 1];
}
