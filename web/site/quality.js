// The quality gate on what the comparator sees (infer/quality.py assess_face): blur, light, and a face blown up
// from too few photo pixels. Limits: site.json constants.quality (infer.quality.DEFAULTS), overridden by the model's.
//
//   const q = assessFace(x, w, h, density, site);   // x: Uint8Array w*h*3, the comparator's input
//   q.issues   // [["blur", "hold steady and retake: the photo is blurred"]]

export function measure(x, w, h) {
  // grey = mean of R, G, B in float32 (numpy: rgb.astype(float32).mean(axis=2))
  const g = new Float32Array(w * h);
  let sum = 0, clipped = 0;
  for (let i = 0; i < w * h; i++) {
    g[i] = Math.fround(Math.fround(x[3 * i] + x[3 * i + 1] + x[3 * i + 2]) / 3);
    sum += g[i];
    if (g[i] >= 250) clipped++;
  }
  // variance of the 4-neighbour Laplacian over the interior
  let n = 0, m = 0, m2 = 0;
  for (let y = 1; y < h - 1; y++) for (let xx = 1; xx < w - 1; xx++) {
    const i = y * w + xx;
    const v = Math.fround(4 * g[i] - g[i - w] - g[i + w] - g[i - 1] - g[i + 1]);
    n++; m += v; m2 += v * v;
  }
  const sharp = n ? m2 / n - (m / n) ** 2 : 0;
  return { sharpness: sharp, brightness: sum / (w * h), clipped: clipped / (w * h), width: w, height: h, issues: [] };
}

export function assessFace(x, w, h, density, site) {
  const lim = { ...site.constants.quality, ...(site.model.quality || {}) }, advice = site.advice.quality;
  const q = measure(x, w, h);
  if (density < lim.min_face_density) q.issues.push(["small", advice.small]);
  if (q.brightness < lim.min_brightness) q.issues.push(["dark", advice.dark]);
  else if (q.brightness > lim.max_brightness || q.clipped > lim.max_clipped) q.issues.push(["bright", advice.bright]);
  if (q.sharpness < lim.min_sharpness && q.brightness >= lim.min_brightness) q.issues.push(["blur", advice.blur]);
  return q;
}

export function qualityDict(q) {   // Quality.to_dict
  const r = (v, d) => Math.round(v * 10 ** d) / 10 ** d;
  return { sharpness: r(q.sharpness, 2), brightness: r(q.brightness, 2), clipped: r(q.clipped, 4), width: q.width,
           height: q.height, issues: q.issues.map(([code]) => code) };
}
