// The page's inspector: photo -> verdict, reason, heatmap, computed on the phone (infer/inspector.py's
// ComparatorInspector, step for step; docs/page.md lists each step and its Python twin).
//
//   const insp = await createInspector({base: "./", threads: 1});
//   const {result, view} = await insp.inspect(fileOrBlob, {name: "IMG_0001.jpg", product: null});
//   result: the same fields as `genuine inspect --json`; view: what the page draws (photo, corners, heatmap)
import * as ort from "./vendor/ort/ort.wasm.min.mjs";
import { Gc, rectify, warpFace, fillOutside, faceSize, pixelScaling, mul, project, frameCorners, alignmentQuality } from "./rectify.js";
import { assessFace, qualityDict } from "./quality.js";
import { HammingIndex, TABLES, BITS, SEED } from "./match.js";
import { verdict, INCONCLUSIVE } from "./judge.js";

export class PhotoError extends Error {   // infer.photo.PhotoError: names the file and the reason
  constructor(name, kind, why) { super(`${name}: ${why}`); this.kind = kind; this.source = name; }
}

// OpenCV.js (a classic script, global `cv`) once its wasm runs. Its Module has a then(): resolving a promise
// with it would recurse, so it is removed before handing cv on.
export function opencv() {
  return new Promise((resolve, reject) => {
    const c = globalThis.cv;
    if (!c) { reject(new Error("OpenCV.js did not load (vendor/opencv/opencv.js)")); return; }
    const done = () => { delete c.then; resolve(c); };
    if (c.Mat && c.calledRun) done(); else c.onRuntimeInitialized = done;
  });
}

// Width and height from the file's header, before any decoding: a 200 MP image is refused, not decoded.
export function imageSize(b) {
  const u16 = (i) => (b[i] << 8) | b[i + 1], le32 = (i) => b[i] | (b[i + 1] << 8) | (b[i + 2] << 16) | (b[i + 3] << 24) >>> 0;
  if (b[0] === 0xff && b[1] === 0xd8) {   // JPEG: walk the markers to a start-of-frame
    let i = 2;
    while (i + 9 < b.length) {
      if (b[i] !== 0xff) { i++; continue; }
      const m = b[i + 1];
      if (m >= 0xc0 && m <= 0xcf && m !== 0xc4 && m !== 0xc8 && m !== 0xcc) return { format: "JPEG", w: u16(i + 7), h: u16(i + 5) };
      if (m === 0xd8 || m === 0x01 || (m >= 0xd0 && m <= 0xd7)) { i += 2; continue; }
      i += 2 + u16(i + 2);
    }
    return { format: "JPEG", w: 0, h: 0 };
  }
  if (b[0] === 0x89 && b[1] === 0x50 && b[2] === 0x4e && b[3] === 0x47) {
    return { format: "PNG", w: (u16(16) << 16) | u16(18), h: (u16(20) << 16) | u16(22) };
  }
  if (b[0] === 0x52 && b[1] === 0x49 && b[8] === 0x57 && b[9] === 0x45) {   // RIFF....WEBP
    const kind = String.fromCharCode(b[12], b[13], b[14], b[15]);
    if (kind === "VP8X") return { format: "WEBP", w: 1 + (b[24] | (b[25] << 8) | (b[26] << 16)), h: 1 + (b[27] | (b[28] << 8) | (b[29] << 16)) };
    if (kind === "VP8L") { const v = le32(21); return { format: "WEBP", w: 1 + (v & 0x3fff), h: 1 + ((v >> 14) & 0x3fff) }; }
    if (kind === "VP8 ") return { format: "WEBP", w: (b[26] | (b[27] << 8)) & 0x3fff, h: (b[28] | (b[29] << 8)) & 0x3fff };
  }
  if (b[0] === 0x47 && b[1] === 0x49 && b[2] === 0x46) return { format: "GIF", w: b[6] | (b[7] << 8), h: b[8] | (b[9] << 8) };
  if (b[0] === 0x42 && b[1] === 0x4d) return { format: "BMP", w: le32(18), h: Math.abs(le32(22) | 0) };
  return null;
}

// PIL's JPEG draft (infer/photo.py load_photo_scaled): the largest 1/8, 1/4, 1/2 keeping min_side on both sides.
export function draftDenominator(w, h, minSide) {
  if (Math.min(w, h) <= 2 * minSide) return 1;
  const scale = Math.min(Math.floor(w / minSide), Math.floor(h / minSide));
  return [8, 4, 2, 1].find(d => scale >= d);
}

// decode: the photo as a cv.Mat RGB at the size Python's decoder gives, and the full photo's pixels per decoded pixel.
export async function decode(cv, blob, name, site, minSide) {
  const head = new Uint8Array(await blob.slice(0, 512 * 1024).arrayBuffer());
  const dims = imageSize(head);
  if (!dims) throw new PhotoError(name, "unsupported", "not a photo this page can read (JPEG, PNG, WebP, GIF or BMP)");
  if (dims.w * dims.h > site.constants.max_pixels) {
    throw new PhotoError(name, "too_large", `${dims.w}x${dims.h} is ${Math.round(dims.w * dims.h / 1e6)} MP, over the `
      + `${Math.round(site.constants.max_pixels / 1e6)} MP limit; refused`);
  }
  let bmp;
  try { bmp = await createImageBitmap(blob, { imageOrientation: "from-image" }); }
  catch (e) { throw new PhotoError(name, "unreadable", `cannot decode (${e.message || e}): a damaged or truncated file?`); }
  const W = bmp.width, H = bmp.height;
  const canvas = new OffscreenCanvas(W, H), ctx = canvas.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  bmp.close();
  const gc = new Gc();
  try {
    const rgba = gc.add(cv.matFromImageData(ctx.getImageData(0, 0, W, H)));
    canvas.width = canvas.height = 1;   // let the browser drop the 12 MP canvas now
    const rgb = new cv.Mat();
    cv.cvtColor(rgba, rgb, cv.COLOR_RGBA2RGB);
    const d = dims.format === "JPEG" ? draftDenominator(dims.w, dims.h, minSide) : 1;
    if (d === 1) return { rgb, fx: 1, fy: 1, width: W, height: H };
    const small = new cv.Mat(), dw = Math.ceil(W / d), dh = Math.ceil(H / d);
    cv.resize(rgb, small, new cv.Size(dw, dh), 0, 0, cv.INTER_AREA);
    rgb.delete();
    return { rgb: small, fx: W / dw, fy: H / dh, width: W, height: H };
  } finally { gc.free(); }
}

async function fetchBytes(url) {
  const r = await fetch(url);
  if (!r.ok) throw new Error(`${url}: ${r.status} ${r.statusText}`);
  return new Uint8Array(await r.arrayBuffer());
}

// orb.bin (docs/page.md): the keypoints and an LSH index over their descriptors
async function loadOrb(base, e) {
  const orb = await fetchBytes(`${base}${e.dir}/orb.bin`);
  const n = new DataView(orb.buffer).getUint32(0, true);
  return { n, pts: Float64Array.from(new Float32Array(orb.buffer.slice(4, 4 + 8 * n))),
           index: new HammingIndex(orb.slice(4 + 8 * n, 4 + 40 * n), n) };
}

async function loadTemplate(cv, base, e) {
  const common = { key: e.key, product: e.product, size: e.size, entry: e, ...(await loadOrb(base, e)) };
  if (e.view) {   // an identification view: its ORB keypoints name its product; nothing is inspected against it
    return { ...common, view: true, image: null, input: null, variation: null };
  }
  const png = await fetch(`${base}${e.dir}/image.png`).then(r => r.blob());
  const bmp = await createImageBitmap(png, { colorSpaceConversion: "none", premultiplyAlpha: "none" });
  const c = new OffscreenCanvas(bmp.width, bmp.height), ctx = c.getContext("2d", { willReadFrequently: true });
  ctx.drawImage(bmp, 0, 0);
  const rgba = cv.matFromImageData(ctx.getImageData(0, 0, bmp.width, bmp.height)), image = new cv.Mat();
  cv.cvtColor(rgba, image, cv.COLOR_RGBA2RGB);
  rgba.delete();
  const t = { ...common, image, input: await fetchBytes(`${base}${e.dir}/input.bin`), variation: null };
  if (e.variation) {
    const { readVariation } = await import("./variation.js");
    const [h, w] = e.variation.shape;
    t.variation = { ...readVariation((await fetchBytes(`${base}${e.dir}/variation.bin`)).buffer, h, w),
                    centre: e.variation.centre, scale: e.variation.scale };
  }
  return t;
}

// zxing-wasm's reader, served from the site (never a CDN)
async function barcodeReader(base) {
  const z = await import("./vendor/zxing/es/reader/index.js");
  const mod = z.prepareZXingModule({ overrides: { locateFile: (p, prefix) => p.endsWith(".wasm") ? `${base}vendor/zxing/reader/${p}` : prefix + p }, fireImmediately: true });
  await mod;
  return z.readBarcodes;
}

// PP-OCRv5 recognition for the text zone (ocr.js), when the site ships it: one session, made once, in this worker
async function textReader(base, site) {
  if (!site.ocr || !site.templates.some(e => e.zones && e.zones.text)) return null;
  const { charset } = await import("./ocr.js");
  const chars = charset(new TextDecoder().decode(await fetchBytes(`${base}${site.ocr.dict}`)));
  const session = await ort.InferenceSession.create(`${base}${site.ocr.file}`, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  return { ort, session, charset: chars };
}

const round = (v, d = 3) => (v === null || v === undefined ? null : Math.round(v * 10 ** d) / 10 ** d);

export async function createInspector({ base = "./", threads = 1, onProgress = () => {} } = {}) {
  const t0 = performance.now();
  base = new URL(base, location.href).href;   // absolute: onnxruntime-web resolves its files against its own URL
  onProgress("loading the site");
  const site = await (await fetch(`${base}site.json`)).json();
  const lsh = site.constants.lsh;   // Python fits the face from ORB with the same hashes (infer/orb.py): they must agree
  if (lsh && (lsh.tables !== TABLES || lsh.bits !== BITS || lsh.seed !== SEED)) {
    throw new Error(`site.json hashes ORB descriptors with ${JSON.stringify(lsh)}, this page's match.js with `
      + `${JSON.stringify({ tables: TABLES, bits: BITS, seed: SEED })}: rebuild the site with the genuine it came with`);
  }
  const cv = await opencv();
  ort.env.wasm.wasmPaths = `${base}vendor/ort/`;
  ort.env.wasm.numThreads = globalThis.crossOriginIsolated ? threads : 1;   // wasm threads need isolation
  onProgress("loading the model");
  const session = await ort.InferenceSession.create(`${base}${site.model.file}`, { executionProviders: ["wasm"], graphOptimizationLevel: "all" });
  const templates = [];
  for (const [k, e] of site.templates.entries()) {
    onProgress(`loading template ${k + 1}/${site.templates.length} (${e.product})`);
    templates.push(await loadTemplate(cv, base, e));
  }
  let zones = null;
  if (site.constants.zones && site.templates.some(e => e.zones)) {
    try {
      const z = await import("./zones.js");
      zones = { mod: z, deps: { cv, readBarcodes: await barcodeReader(base), ocr: await textReader(base, site).catch(e => { console.warn("text recognition unavailable on this page:", e); return null; }) } };
    } catch (e) { console.warn("zone checks unavailable on this page:", e); }
  }
  const noZones = { weighed: (p) => ({ p, evidence: { findings: [], weighed: false, why: "no zone checked (not on this page)" } }), retakeAdvice: () => [] };
  const [fw, fh] = site.model.face_size;
  const side = 2 * Math.max(fw, fh);   // rectify.model_face_side
  const readyMs = performance.now() - t0;

  async function compare(x, tplInput) {
    const feeds = { face: new ort.Tensor("uint8", x, [1, fh, fw, 3]), template: new ort.Tensor("uint8", tplInput, [1, fh, fw, 3]) };
    const out = await session.run(feeds);
    const hm = out.heatmap, dims = hm.dims;
    return { p_counterfeit: Number(out.p_counterfeit.data[0]), heatmap: { data: Float32Array.from(hm.data), h: dims[dims.length - 2], w: dims[dims.length - 1] } };
  }

  function faceInput(face) {   // preprocess.face_input
    if (face.cols === fw && face.rows === fh) return Uint8Array.from(face.data);
    const out = new cv.Mat(), shrink = face.cols > fw && face.rows > fh;
    cv.resize(face, out, new cv.Size(fw, fh), 0, 0, shrink ? cv.INTER_AREA : cv.INTER_LINEAR);
    const x = Uint8Array.from(out.data);
    out.delete();
    return x;
  }

  async function inspect(blob, { name = blob.name || "<photo>", product = null } = {}) {
    const T0 = performance.now(), gc = new Gc();
    try {
      const minSide = Math.max(side, site.constants.match_side, site.constants.sharp_decode);
      const dec = await decode(cv, blob, name, site, minSide);
      gc.add(dec.rgb);
      const T1 = performance.now();
      const r = rectify(cv, dec.rgb, site, templates, { product });
      const T2 = performance.now();
      const timing = { decode: round(T1 - T0, 2), rectify: round(T2 - T1, 2) };
      const full = pixelScaling(1);
      const toPhoto = (dec.fx !== 1 || dec.fy !== 1) ? [dec.fx, 0, 0.5 * dec.fx - 0.5, 0, dec.fy, 0.5 * dec.fy - 0.5, 0, 0, 1] : full;
      const view = { width: dec.width, height: dec.height, corners: null, heat: null, faceSize: [fw, fh] };
      const t = r.template, Hd = r.H;   // template -> decoded photo; results carry it in the full photo's pixels
      if (r.H) {
        r.H = mul(toPhoto, r.H);
        if (t) r.corners = project(r.H, frameCorners(t.size[0], t.size[1]));
        view.corners = r.corners;
      }
      const rect = rectDict(r);
      if (!r.ok) {
        timing.total = round(performance.now() - T0, 2);
        return { view, result: { source: name, verdict: INCONCLUSIVE, reason: r.reason, authenticity: null, p_counterfeit: null,
          product: null, product_confidence: null, quality: { issues: [r.reason_code] }, timing_ms: timing,
          model_sha256: site.model.sha256, reference: null, rectification: rect, evidence: null } };
      }
      let face = gc.add(warpFace(cv, dec.rgb, Hd, t, side, site.constants.pad));
      if (r.visible < 1) face = fillOutside(cv, face, dec.rgb.rows, dec.rgb.cols, Hd, t);
      const density = r.scale * Math.sqrt(t.size[0] * t.size[1] / (fw * fh));
      rect.density = round(density);
      const x = faceInput(face);
      const q = assessFace(x, fw, fh, density, site);
      const T3 = performance.now();
      const out = await compare(x, t.input);
      const T4 = performance.now();
      const fusion = site.model.fusion || {};
      out.variation = null;
      if (t.variation && Object.keys(fusion).length) {
        const { variationEvidence } = await import("./variation.js");
        out.variation = variationEvidence(cv, x, fh, fw, t.variation, site.constants.variation);
      }
      const T5 = performance.now();
      out.zones = [];
      if (zones && t.entry.zones) {
        let sharp = gc.add(warpFace(cv, dec.rgb, Hd, t, Math.min(site.constants.sharp_side, Math.max(...t.size)), site.constants.pad));
        if (r.visible < 1) sharp = fillOutside(cv, sharp, dec.rgb.rows, dec.rgb.cols, Hd, t);
        out.zones = await zones.mod.checkZones(zones.deps, sharp.data, sharp.rows, sharp.cols, t.entry.zones, site.constants.zones);
      }
      const T6 = performance.now();
      const j = verdict(out, q, rect, t.entry, name, site, zones ? zones.mod : noZones);
      timing.model = round(T4 - T3, 2); timing.variation = round(T5 - T4, 2); timing.zones = round(T6 - T5, 2);
      timing.total = round(performance.now() - T0, 2);
      view.heat = j.heat;
      view.face = new ImageData(rgbaOf(x), fw, fh);
      view.zoneBoxes = ((j.evidence.zones || {}).findings || []).filter(f => f.state === "fail" && f.box).map(f => f.box);
      return { view, result: { source: name, verdict: j.verdict, reason: j.reason, authenticity: j.authenticity,
        p_counterfeit: j.p_counterfeit, product: r.product, product_confidence: rect.quality, quality: qualityDict(q),
        timing_ms: timing, model_sha256: site.model.sha256, reference: null, rectification: rect, evidence: j.evidence,
        comparator_p_raw: out.p_counterfeit } };
    } finally { gc.free(); }
  }

  // the model's outputs on a given face (the parity test feeds Python's faces): {p_counterfeit, heatmap}
  async function compareFace(x, key) {
    const t = templates.find(tt => tt.key === key);
    return compare(Uint8Array.from(x), t.input);
  }

  return { site, inspect, compareFace, readyMs, threads: ort.env.wasm.numThreads, cv, templates };
}

function rgbaOf(x) {
  const n = x.length / 3, out = new Uint8ClampedArray(4 * n);
  for (let i = 0; i < n; i++) { out[4 * i] = x[3 * i]; out[4 * i + 1] = x[3 * i + 1]; out[4 * i + 2] = x[3 * i + 2]; out[4 * i + 3] = 255; }
  return out;
}

function rectDict(r) {   // Rectified.to_dict
  return { product: r.ok ? r.product : null, ok: r.ok, reason_code: r.reason_code, reason: r.reason, inliers: r.inliers,
           matches: r.matches, keypoints: r.keypoints, quality: round(alignmentQuality(r)), scale: round(r.scale),
           visible: round(r.visible), reproj_px: round(r.reproj_px), area: round(r.area, 4), agreement: round(r.agreement),
           density: round(r.density), refined_px: round(r.refined_px, 2), start: r.start, corners: r.corners ? r.corners.map(p => p.map(v => round(v, 2))) : null,
           H: r.H ? r.H.map(v => round(v, 8)) : null, template: r.ok && r.template ? r.template.key : null,
           candidates: r.candidates, evidence: r.evidence, identified: r.identified, closest: r.ok ? null : r.closest,
           seconds: round(r.seconds, 4), detector: "orb" };
}
