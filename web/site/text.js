// The text zone on the page: infer/zone_text.py's check (which lines, which part of a long line, how a reading is
// compared with the artwork's line, the finding's words), text_screen.py's screen (which lines differ most from the
// artwork, without OCR) and zones.check's small-print rule. Recognition is ocr.js (PP-OCRv5 in onnxruntime-web).
//
//   const f = await checkText({cv, ocr}, face, zones.text, constants.zones.text);   // a Finding.to_dict
//
// face: {data: h*w*3 RGB bytes, h, w}. Strings are compared as Python does, by code points (Array.from), with
// Python's character classes: \w's letters and digits are \p{L}\p{N} here (the same on every character of the
// recogniser's list, tested), str.isdigit is the set Python lists in the constants, str.isspace is PY_SPACE.
import { finding, pyRound, unpng } from "./zones.js";
import { readBoxes } from "./ocr.js";

const F = Math.fround;
const ALNUM = /^[\p{L}\p{N}]$/u;   // re.match(r"[^\W_]", ch)
const ND = /\p{Nd}/gu;             // re's \d on str
const PY_SPACE = /^[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]$/u;
const cps = s => Array.from(s);
const key = s => cps(s).filter(c => ALNUM.test(c)).join("");           // zone_text._key
const shape = s => key(s).replace(ND, "9").replace(/[A-Za-z]/g, "A");  // zone_text.shape
export const charClass = c => [ALNUM.test(c), new RegExp(ND.source, "u").test(c)];   // (tested against Python's re)
const words = s => s.split(/[\t\n\v\f\r\x1c-\x1f \x85\xa0\u1680\u2000-\u200a\u2028\u2029\u202f\u205f\u3000]+/u)
  .filter(Boolean);                                                    // str.split()

export async function checkText(deps, face, zone, K) {   // zones.check's text branch
  const lines = zone.lines.filter(ln => (ln.box[3] - ln.box[1]) * face.h >= K.min_text_px);
  if (!lines.length) return finding("text", "unread", 0, "text too small on this photo to read: retake closer",
                                    zone.lines[0].box, {});
  await prepareStrips(zone);
  return check(deps, face, { ...zone, lines }, K);
}

async function check(deps, face, zone, K) {   // zone_text.check with the default budget (READ_LINES)
  const { idx, screen } = choose(deps.cv, face, zone, K.read_lines, K);
  const lines = idx.map(i => zone.lines[i]);
  const parts = idx.map((i, k) => (screen.has(i) ? segment(lines[k], screen.get(i)[1], face, K) : null));
  const reads = await readLines(deps, face, lines.map((ln, k) => parts[k] || ln.box), K);
  const scores = [...screen.values()].map(v => v[0]);
  const screened = screen.size ? { lines_screened: screen.size, screen_worst: Math.max(...scores),
                                   segments_read: parts.filter(p => p !== null).length } : {};
  const wrong = [];
  let read = 0;
  lines.forEach((ln, k) => {
    const rd = reads[k], part = parts[k];
    if (rd.conf < K.read_conf || !rd.text) return;   // unread: no evidence either way
    let [differs, what] = part ? segmentDiffers(ln, rd, K) : [differsSurely(ln, rd, K), ""];
    if (differs === null) return;                    // differing but not surely: no evidence either way
    read += 1;
    if (differs) {
      what = what || (ln.variable ? `the lot/serial line '${rd.text}' does not have the artwork's format '${ln.text}'`
        : wordDiff(rd.text, ln.text));
      wrong.push({ ln, part, text: rd.text, what, d: part ? 1 : distance(key(rd.text), key(ln.text)) });
    }
  });
  const box = union(zone.lines.map(ln => ln.box));
  if (!read) {
    const what = screen.size ? `the ${countLines(idx.length)} least like the artwork could not be read surely`
      : "text not readable on this photo";
    return finding("text", "unread", 0, `${what} (no evidence either way)`, box, screened);
  }
  if (!wrong.length) return finding("text", "pass", 0, `${countLines(read)} of text read as the artwork`
    + (screen.size ? ` (the ${idx.length} least like it of ${zone.lines.length})` : ""), box,
    { lines_read: read, ...screened });
  const worst = wrong.reduce((a, b) => (b.d > a.d ? b : a));   // max(): the first of equal largest
  const more = wrong.length > 1 ? ` (and ${wrong.length - 1} more line${wrong.length > 2 ? "s" : ""})` : "";
  return finding("text", "fail", wrong.length, `text: ${worst.what}${more}`, worst.part || worst.ln.box,
    { lines_read: read, ...screened, lines_differing: wrong.length,
      differences: wrong.map(x => ({ read: x.text, artwork: x.ln.text, box: x.part || x.ln.box })) });
}

function union(boxes) {   // zone_text._union
  return [0, 1, 2, 3].map(k => (k < 2 ? Math.min : Math.max)(...boxes.map(b => b[k])));
}

function choose(cv, face, zone, budget, K) {   // zone_text.choose: {idx, screen: Map(i -> [score, where])}
  const lines = zone.lines, all = lines.map((_, i) => i);
  if (!budget || lines.length <= budget || !lines.every(ln => "strip" in ln)) return { idx: all, screen: new Map() };
  const screen = new Map();
  lines.forEach((ln, i) => { if (!ln.variable) screen.set(i, differ(cv, face, ln.box, ln.strip, K.screen)); });
  const order = [...screen.keys()].sort((a, b) => screen.get(b)[0] - screen.get(a)[0])   // stable, as sorted()
    .concat(all.filter(i => !screen.has(i)));
  return { idx: order.slice(0, budget).sort((a, b) => a - b), screen };
}

function segment(ln, where, face, K) {   // zone_text.segment: the part of a long line read, or null
  const [x0, y0, x1, y1] = ln.box, width = K.segment * (y1 - y0) * face.h / face.w;
  if (ln.variable || width >= 0.8 * (x1 - x0)) return null;
  const c = Math.min(Math.max(x0 + where * (x1 - x0), x0 + width / 2), x1 - width / 2);
  return [c - width / 2, y0, c + width / 2, y1];
}

async function readLines(deps, face, boxes, K) {   // zone_text.read_lines: slack around each box, in pixels
  const px = boxes.map(([x0, y0, x1, y1]) => {
    // (zone_text.read_lines' own numbers: a tenth of the height, 2% of the width + 0.005 along the line)
    const my = K.margin * (y1 - y0), mx = 0.02 * (x1 - x0) + 0.005;
    return [Math.max(0, Math.trunc((x0 - mx) * face.w)), Math.max(0, Math.trunc((y0 - my) * face.h)),
            Math.min(face.w, Math.ceil((x1 + mx) * face.w)), Math.min(face.h, Math.ceil((y1 + my) * face.h))];
  });
  return readBoxes(deps.cv, deps.ocr, face, px, K);
}

// ---- comparing a reading with the artwork's line

const isdigitStr = (s, K) => s.length > 0 && cps(s).every(c => K.digits.includes(c));   // str.isdigit

function same(ln, text) {   // zone_text._same
  return ln.variable ? shape(text) === shape(ln.text) : key(text) === key(ln.text);
}

function alnum(text, chars) {   // zone_text._alnum: [char, probability, code point index]
  const t = cps(text), probs = chars && chars.length ? chars : t.map(() => 1.0), out = [];
  for (let k = 0; k < Math.min(t.length, probs.length); k++) if (ALNUM.test(t[k])) out.push([t[k], probs[k], k]);
  return out;
}

function differsSurely(ln, rd, K) {   // zone_text.differs_surely: false, true or null
  if (same(ln, rd.text)) return false;
  if (ln.variable || rd.conf < K.fail_conf) return rd.conf < K.fail_conf ? null : true;
  const a = cps(key(ln.text)), b = cps(key(rd.text)), sure = alnum(rd.text, rd.chars).map(g => g[1]);
  const spans = opcodes(a, b).filter(o => o[0] !== "equal");
  const slack = isdigitStr(a.join(""), K) ? 0 : K.end_slack;   // a number's last digit is its check digit
  const inner = spans.filter(([, , i1, , j1]) => !(slack && i1 > a.length - slack - 1 && j1 > b.length - slack - 1));
  if (!inner.length) return null;
  const near = [];
  for (const [, , , j0, j1] of inner) {
    for (let j = Math.max(0, j0 - 1); j < Math.min(sure.length, j1 + 1); j++) near.push(sure[j]);
  }
  return (near.length ? Math.min(...near) : 1.0) >= K.char_conf ? true : null;
}

function segmentDiffers(ln, rd, K) {   // zone_text.segment_differs: [false|true|null, what]
  let got = alnum(rd.text, rd.chars).slice(K.end_slack);
  got = got.slice(0, got.length - K.end_slack);
  const art = alnum(ln.text, null);
  if (got.length < 4) return [null, ""];
  const a = art.map(g => g[0]), b = got.map(g => g[0]);
  const [edits, i0, i1] = fit(a, b);
  if (edits === 0) return [false, ""];
  if (rd.conf < K.fail_conf) return [null, ""];
  const ops = opcodes(a.slice(i0, i1), b).filter(o => o[0] !== "equal");
  const near = [];
  for (const [, , , j0, j1] of ops) {
    for (let j = Math.max(0, j0 - 1); j < Math.min(got.length, j1 + 1); j++) near.push(got[j][1]);
  }
  if ((near.length ? Math.min(...near) : 1.0) < K.char_conf) return [null, ""];
  const [, ai0, ai1, j0, j1] = ops[0];
  const last = art.length - 1;   // an insertion after the artwork's last character starts past its end
  const ak = [art[Math.min(i0 + ai0, last)][2], art[Math.min(Math.max(i0 + ai1 - 1, i0 + ai0), last)][2]];
  const gk = [got[Math.min(j0, got.length - 1)][2],
              got[j1 > j0 ? Math.max(j1 - 1, j0) : Math.min(j0, got.length - 1)][2]];
  return [true, `'${wordsAround(rd.text, ...gk)}' where the artwork says '${wordsAround(ln.text, ...ak)}'`];
}

function fit(a, b) {   // zone_text._fit: [edits, i0, i1], semi-global Levenshtein, ties as Python's tuple min()
  let prev = new Array(a.length + 1).fill(0), start = Array.from({ length: a.length + 1 }, (_, j) => j);
  b.forEach((cb, i) => {
    const cur = [i + 1], cst = [0];
    for (let j = 1; j <= a.length; j++) {
      const opts = [[prev[j - 1] + (a[j - 1] !== cb ? 1 : 0), start[j - 1]], [prev[j] + 1, start[j]],
                    [cur[j - 1] + 1, cst[j - 1]]];
      let best = opts[0];
      for (const o of opts.slice(1)) if (o[0] < best[0] || (o[0] === best[0] && o[1] < best[1])) best = o;
      cur.push(best[0]);
      cst.push(best[1]);
    }
    prev = cur;
    start = cst;
  });
  let j = 0;
  for (let k = 1; k <= a.length; k++) if (prev[k] < prev[j]) j = k;
  return [prev[j], start[j], j];
}

function wordsAround(text, k0, k1) {   // zone_text._words_around, by code points
  const t = cps(text);
  while (k0 > 0 && !PY_SPACE.test(t[k0 - 1])) k0 -= 1;
  while (k1 < t.length - 1 && !PY_SPACE.test(t[k1 + 1])) k1 += 1;
  return t.slice(k0, k1 + 1).join("");
}

function wordDiff(got, want) {   // zone_text._word_diff: the first differing words
  const a = words(want), b = words(got);
  for (const [op, i0, i1, j0, j1] of opcodes(a, b)) {
    if (op !== "equal") {
      return `'${b.slice(j0, j1).join(" ") || "(nothing)"}' where the artwork says '${a.slice(i0, i1).join(" ")
        || "(nothing)"}'`;
    }
  }
  return `'${got}' where the artwork says '${want}'`;
}

function distance(a, b) {   // zone_text.distance: Levenshtein, by code points
  a = cps(a); b = cps(b);
  let prev = Array.from({ length: b.length + 1 }, (_, j) => j);
  a.forEach((ca, i) => {
    const cur = [i + 1];
    b.forEach((cb, j) => cur.push(Math.min(prev[j + 1] + 1, cur[j] + 1, prev[j] + (ca !== cb ? 1 : 0))));
    prev = cur;
  });
  return prev[prev.length - 1];
}

// difflib.SequenceMatcher(a=a, b=b, autojunk=False).get_opcodes() of two arrays (characters or words): no junk and
// no popular elements, so b2j holds every element of b, as CPython 3.11's difflib.py
export function opcodes(a, b) {
  const b2j = new Map();
  b.forEach((e, j) => { if (!b2j.has(e)) b2j.set(e, []); b2j.get(e).push(j); });
  const longest = (alo, ahi, blo, bhi) => {   // find_longest_match
    let besti = alo, bestj = blo, bestsize = 0, j2len = new Map();
    for (let i = alo; i < ahi; i++) {
      const newj2len = new Map();
      for (const j of b2j.get(a[i]) || []) {
        if (j < blo) continue;
        if (j >= bhi) break;
        const k = (j2len.get(j - 1) || 0) + 1;
        newj2len.set(j, k);
        if (k > bestsize) { besti = i - k + 1; bestj = j - k + 1; bestsize = k; }
      }
      j2len = newj2len;
    }
    // (the junk extensions: nothing is junk; the equal-element extension is kept for the letter of difflib)
    while (besti > alo && bestj > blo && a[besti - 1] === b[bestj - 1]) { besti--; bestj--; bestsize++; }
    while (besti + bestsize < ahi && bestj + bestsize < bhi && a[besti + bestsize] === b[bestj + bestsize]) bestsize++;
    return [besti, bestj, bestsize];
  };
  const queue = [[0, a.length, 0, b.length]], blocks = [];
  while (queue.length) {   // get_matching_blocks
    const [alo, ahi, blo, bhi] = queue.pop(), [i, j, k] = longest(alo, ahi, blo, bhi);
    if (k) {
      blocks.push([i, j, k]);
      if (alo < i && blo < j) queue.push([alo, i, blo, j]);
      if (i + k < ahi && j + k < bhi) queue.push([i + k, ahi, j + k, bhi]);
    }
  }
  blocks.sort((x, y) => x[0] - y[0] || x[1] - y[1] || x[2] - y[2]);
  const merged = [];
  let [i1, j1, k1] = [0, 0, 0];
  for (const [i2, j2, k2] of blocks) {
    if (i1 + k1 === i2 && j1 + k1 === j2) k1 += k2;
    else { if (k1) merged.push([i1, j1, k1]); [i1, j1, k1] = [i2, j2, k2]; }
  }
  if (k1) merged.push([i1, j1, k1]);
  merged.push([a.length, b.length, 0]);
  const out = [];
  let i = 0, j = 0;
  for (const [ai, bj, size] of merged) {   // get_opcodes
    const tag = i < ai && j < bj ? "replace" : i < ai ? "delete" : j < bj ? "insert" : "";
    if (tag) out.push([tag, i, ai, j, bj]);
    i = ai + size; j = bj + size;
    if (size) out.push(["equal", ai, i, bj, j]);
  }
  return out;
}

// ---- the screen (text_screen.py): how unlike the artwork each line's print is, and where

function greyStrip(cv, face, box, pad, S) {   // text_screen._grey_strip: {data: float32, w, h}
  const { w, h } = face, x0 = box[0] * w, y0 = box[1] * h, x1 = box[2] * w, y1 = box[3] * h;
  const k = S.height / Math.max(y1 - y0, 1.0), outW = Math.max(pyRound((x1 - x0) * k, 0), 1);
  const mPx = Math.ceil(pad / k + 2 / k) + 2;
  const cx0 = Math.max(Math.trunc(x0) - mPx, 0), cy0 = Math.max(Math.trunc(y0) - mPx, 0);
  const cx1 = Math.min(Math.ceil(x1) + mPx, w), cy1 = Math.min(Math.ceil(y1) + mPx, h);
  const pw = Math.max(cx1 - cx0, 0), ph = Math.max(cy1 - cy0, 0), part = new Uint8Array(pw * ph * 3);
  for (let y = 0; y < ph; y++) {
    part.set(face.data.subarray(((cy0 + y) * w + cx0) * 3, ((cy0 + y) * w + cx1) * 3), y * pw * 3);
  }
  const src = cv.matFromArray(ph, pw, cv.CV_8UC3, part), grey = new cv.Mat();
  let g;
  try {   // cvtColor and the 8-bit GaussianBlur: OpenCV.js gives cv2 5.x's bytes
    cv.cvtColor(src, grey, cv.COLOR_RGB2GRAY);
    if (k < 0.7) {   // shrinking: soften first (text_screen's reason)
      cv.GaussianBlur(grey, src, new cv.Size(0, 0), 0.5 / k, 0, cv.BORDER_DEFAULT);
      g = Uint8Array.from(src.data);
    } else g = Uint8Array.from(grey.data);
  } finally { src.delete(); grey.delete(); }
  const M = [F(k), 0, F(pad - (x0 - cx0) * k), 0, F(k), F(pad - (y0 - cy0) * k)];
  const oh = S.height + 2 * pad, ow = outW + 2 * pad;
  return { data: warpAffineU8(g, ph, pw, M, oh, ow), w: ow, h: oh };
}

// cv2 5.x's warpAffine(grey u8, M, INTER_LINEAR, BORDER_REPLICATE) as float32: M inverted in float64, then float32
// coordinates (fma) and float32 bilinear weights, horizontal first, rounded half to even. OpenCV.js 4.12 quantises
// the weights to 1/32 px (1-2 grey levels off on 12% of a strip); this is off by 1 on about 0.2% of pixels (cv2's
// own vector lanes round a few coordinates otherwise).
function warpAffineU8(src, sh, sw, m, h, w) {
  let D = m[0] * m[4] - m[1] * m[3];
  D = D !== 0 ? 1 / D : 0;
  const A11 = m[4] * D, A22 = m[0] * D, A12 = -m[1] * D, A21 = -m[3] * D;
  const M = [A11, A12, -A11 * m[2] - A12 * m[5], A21, A22, -A21 * m[2] - A22 * m[5]].map(F);
  const out = new Float32Array(h * w);
  const cx = p => Math.min(Math.max(p, 0), sw - 1), cy = p => Math.min(Math.max(p, 0), sh - 1);   // BORDER_REPLICATE
  for (let y = 0; y < h; y++) {
    const mx = F(F(y * M[1]) + M[2]), my = F(F(y * M[4]) + M[5]);
    for (let x = 0; x < w; x++) {
      const sx = F(M[0] * x + mx), sy = F(M[3] * x + my), ix = Math.floor(sx), iy = Math.floor(sy);
      const ax = F(sx - ix), ay = F(sy - iy), r0 = cy(iy) * sw, r1 = cy(iy + 1) * sw, c0 = cx(ix), c1 = cx(ix + 1);
      const p0 = src[r0 + c0], p1 = src[r0 + c1], p2 = src[r1 + c0], p3 = src[r1 + c1];
      const v0 = F(p0 + ax * (p1 - p0)), v1 = F(p2 + ax * (p3 - p2)), v = F(v0 + ay * F(v1 - v0));
      let r = Math.round(v);
      if (r - v === 0.5 && r % 2 !== 0) r -= 1;   // v_round: to even
      out[y * w + x] = Math.min(Math.max(r, 0), 255);
    }
  }
  return out;
}

// cv2.resize(float32 grey, (w, h), INTER_LINEAR) as cv2 5.x computes it: at (d + 0.5) * scale - 0.5, float32 weights,
// each pass p + t * (q - p) rounded once (bit for bit on a strip; OpenCV.js 4.12's is up to 2e-3 away), edges
// replicated. The screen resizes only along the line (a face smaller than the template), so rows are copied.
function resizeF32(s, w, h) {
  const out = new Float32Array(w * h), tab = (n, m) => Array.from({ length: n }, (_, d) => {
    const f = (d + 0.5) * (m / n) - 0.5;
    let i = Math.floor(f), t = F(f - i);
    if (i < 0) { i = 0; t = 0; }
    if (i >= m - 1) { i = m - 1; t = 0; }
    return [i, Math.min(i + 1, m - 1), t];
  });
  const xs = tab(w, s.w), ys = tab(h, s.h), lerp = (p, q, t) => F(p + t * F(q - p));
  for (let y = 0; y < h; y++) {
    const [r0, r1, b] = ys[y];
    for (let x = 0; x < w; x++) {
      const [c0, c1, a] = xs[x];
      const u = lerp(s.data[r0 * s.w + c0], s.data[r0 * s.w + c1], a);
      out[y * w + x] = b ? lerp(u, lerp(s.data[r1 * s.w + c0], s.data[r1 * s.w + c1], a), b) : u;
    }
  }
  return { data: out, w, h };
}

const strips = new Map();   // the artwork's strips (base64 PNG), decoded once
async function artStrip(b64) {
  if (!strips.has(b64)) {
    const g = await unpng(b64);
    strips.set(b64, { data: Float32Array.from(g.data), w: g.w, h: g.h });
  }
  return strips.get(b64);
}

function std(s, x0, x1) {   // ndarray.std() of the columns x0..x1 (float64 here, float32 in numpy: see docs)
  let sum = 0, n = 0;
  for (let y = 0; y < s.h; y++) for (let x = x0; x < x1; x++) { sum += s.data[y * s.w + x]; n++; }
  const mean = sum / n;
  let ss = 0;
  for (let y = 0; y < s.h; y++) for (let x = x0; x < x1; x++) ss += (s.data[y * s.w + x] - mean) ** 2;
  return Math.sqrt(ss / n);
}

function cols(cv, s, x0, x1) {   // the columns x0..x1 of a float32 strip as a cv.Mat
  const w = x1 - x0, m = new cv.Mat(s.h, w, cv.CV_32FC1);
  for (let y = 0; y < s.h; y++) m.data32F.set(s.data.subarray(y * s.w + x0, y * s.w + x1), y * w);
  return m;
}

export function differ(cv, face, box, art, S) {   // text_screen.differ: [score, where], both rounded to 4 places
  const t = artStripSync(art);
  let f = greyStrip(cv, face, box, S.slack, S);
  if (f.w - 2 * S.slack !== t.w) f = resizeF32(f, t.w + 2 * S.slack, t.h + 2 * S.slack);
  const win = Math.max(Math.trunc(S.window * S.height), 8), step = Math.trunc(win / 2);
  let worst = 1.0, where = 0.5;
  for (let x = 0; x <= Math.max(t.w - win, 0); x += step) {
    const tw = Math.min(win, t.w - x);
    if (std(t, x, x + tw) < S.min_std) continue;
    const fm = cols(cv, f, x, x + tw + 2 * S.slack), tm = cols(cv, t, x, x + tw), res = new cv.Mat();
    let r;
    try {   // OpenCV.js's matchTemplate gives cv2 5.x's floats (compared when porting)
      cv.matchTemplate(fm, tm, res, cv.TM_CCOEFF_NORMED);
      r = Math.max(...res.data32F);
    } finally { fm.delete(); tm.delete(); res.delete(); }
    if (r < worst) { worst = r; where = (x + tw / 2) / t.w; }
  }
  return [pyRound(1.0 - worst, 4), pyRound(where, 4)];
}

// differ is synchronous (the screen runs on every line before any OCR): the strips are decoded up front by prepare()
function artStripSync(b64) {
  const s = strips.get(b64);
  if (!s) throw new Error("text: the artwork's strip was not decoded (prepareStrips before differ)");
  return s;
}

export async function prepareStrips(zone) {   // decode every line's strip once (unpng awaits a DecompressionStream)
  for (const ln of zone.lines) if (ln.strip) await artStrip(ln.strip);
}

const countLines = (n) => (n === 1 ? `${n} line` : `${n} lines`);   // zone_text._lines
