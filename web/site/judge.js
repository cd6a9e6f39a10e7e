// The face -> verdict step on the page: infer/judge.py FaceJudge.verdict and _decide, infer/verdict.py,
// infer/variation.py's fusion and infer/heatmap.py's where(), line for line. Operating points are not computed here:
// `genuine page build` wrote each template's (FaceJudge.operating_point, fused and plain) into site.json.
//
//   const res = verdict({p_counterfeit, heatmap, variation, zones}, quality, rect, source, site, weighed)

export const GENUINE = "GENUINE", SUSPECT = "SUSPECT", INCONCLUSIVE = "INCONCLUSIVE";

export function notValidated(th) {
  const v = th.validation;
  if (v && typeof v === "object" && v.validated === false) return `not validated: ${v.why || "its calibration is not evidence of separation"}`;
  return null;
}

export function decide(p, th) {
  if (notValidated(th)) return INCONCLUSIVE;
  if (p >= th.threshold_suspect) return SUSPECT;
  if (p < th.threshold_genuine) return GENUINE;
  return INCONCLUSIVE;
}

// p and the thresholds with the fewest decimals (at least 2) at which p differs from each: never "p=0.50 < 0.50"
export function decisive(p, ...ths) {
  for (let d = 2; d < 10; d++) {
    const out = [p, ...ths].map(v => v.toFixed(d));
    if (out.slice(1).every(t => t !== out[0])) return out;
  }
  return [p, ...ths].map(v => String(v));
}

// where(): the hottest cell of a map (Float32Array h*w) in words an officer can use
export function where(heat, h, w) {
  let k = 0;
  for (let i = 1; i < heat.length; i++) if (heat[i] > heat[k]) k = i;
  const y = Math.floor(k / w), x = k % w;
  const row = ["upper", "middle", "lower"][Math.min(2, Math.floor(3 * (y + 0.5) / h))];
  const col = ["left", "centre", "right"][Math.min(2, Math.floor(3 * (x + 0.5) / w))];
  return row === "middle" && col === "centre" ? "centre" : `${row} ${col}`.replace("middle ", "");
}

function terms(pc, s, fusion, clip) {
  const p = Math.min(Math.max(pc, 1e-7), 1 - 1e-7);
  const [a, b] = fusion.coef.map(Number);
  return [a * Math.log(p / (1 - p)), b * Math.min(Math.max(s, -clip), clip)];
}
export function fusedP(pc, s, fusion, clip) {
  const [c, v] = terms(pc, s, fusion, clip);
  return 1 / (1 + Math.exp(-(c + v + Number(fusion.intercept))));
}

const round = (v, d) => Math.round(v * 10 ** d) / 10 ** d;

function zoneReason(verdict, findings, zones, retakeAdvice) {
  const failed = findings.filter(f => f.state === "fail").map(f => f.message);
  const advice = verdict === INCONCLUSIVE ? retakeAdvice(findings) : [];
  const retake = advice.length ? `; to check the barcode and print, retake: ${advice.join("; ")}` : "";
  if (!failed.length) return retake;
  if (!zones.weighed) return `; zone checks (not part of the score: ${zones.why}): ` + failed.join("; ") + retake;
  return (verdict === SUSPECT ? "; " : "; but ") + failed.join("; ") + retake;
}

function decideWhy(p, th, q, op, product, against, heat, hh, hw) {
  const cal = op.calibration;
  const own = cal ? `, this product's operating point from its ${cal.photos} genuine photos` : "";
  if (q.issues.length) return [INCONCLUSIVE, q.issues.map(([, a]) => a).join("; ")];
  const why = notValidated(th);
  if (why) return [INCONCLUSIVE, `this model is ${why} (for ${product}): examine by hand`];
  if (op.not_calibrated) return [INCONCLUSIVE, op.not_calibrated];
  const v = decide(p, th);
  const [ps, tg, ts] = decisive(p, th.threshold_genuine, th.threshold_suspect);
  if (v === SUSPECT) return [v, `signs of counterfeiting (p=${ps} >= ${ts}${own}): the package differs from ${against} most in its ${where(heat, hh, hw)}: examine that area`];
  if (v === GENUINE) return [v, `matches ${against}: no sign of counterfeiting found (p=${ps} < ${tg}${own})`];
  return [v, `uncertain (p=${ps}, between ${tg} and ${ts}${own}): retake closer and in good light, or examine by hand; the largest difference is in the package's ${where(heat, hh, hw)}`];
}

// verdict: FaceJudge.verdict. out: {p_counterfeit, heatmap: {data, h, w}, variation: {score, cells, cellsH, cellsW} | null,
// zones: findings}; q: quality.js's; rect: the rectification dict; tpl: site.json's template entry;
// zonesMod: {weighed, retakeAdvice} (zones.js).
export function verdict(out, q, rect, tpl, source, site, zonesMod) {
  const fusion = site.model.fusion || {}, product = rect.product, clip = site.constants.variation.score_clip;
  const pComp = out.p_counterfeit;
  let heat = out.heatmap.data, hh = out.heatmap.h, hw = out.heatmap.w;
  const s = out.variation ? out.variation.score : null;
  const evidence = { comparator_p: round(pComp, 6), variation_score: s === null ? null : round(s, 4), fused: s !== null };
  let p, against;
  if (s !== null) {
    p = fusedP(pComp, s, fusion, clip);
    against = `the genuine reference of ${product} and its genuine photos`;
    const [cc, cvv] = terms(pComp, s, fusion, clip);
    evidence.strongest = cvv > cc ? "variation" : "comparator";
    const v = out.variation;
    if (cvv > cc && v.cellsH === hh && v.cellsW === hw) heat = v.cells;
  } else {
    p = pComp;
    against = `the genuine reference of ${product}`;
  }
  const findings = out.zones || [];
  const w = zonesMod.weighed(p, findings, site.model.zones);
  p = w.p; evidence.zones = w.evidence;
  const op = (s !== null ? tpl.operating_point.fused : tpl.operating_point.plain);
  const th = op.thresholds, cal = op.calibration;
  evidence.thresholds = { source: op.source, threshold_genuine: th.threshold_genuine, threshold_suspect: th.threshold_suspect, calibration: cal };
  if (op.note) evidence.thresholds.note = op.note;
  let [v, reason] = decideWhy(p, th, q, op, product, against, heat, hh, hw);
  reason += zoneReason(v, findings, evidence.zones, zonesMod.retakeAdvice);
  if (!(site.model.products || []).includes(product)) reason += "; this product was not in the model's training data";
  if (s === null && Object.keys(fusion).length) {
    reason += `; compared with its template only: genuine photos of ${product} in the reference store `
      + "(genuine references add --genuine-photos) would also check it against how genuine units vary";
  }
  return { verdict: v, reason, authenticity: round(1 - p, 6), p_counterfeit: round(p, 6), evidence, heat: { data: heat, h: hh, w: hw } };
}
