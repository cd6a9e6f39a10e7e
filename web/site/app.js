// The page's wiring: camera and file inputs -> the inspector (pipeline.js) -> verdict, reason, photo with the
// package outlined, face with its heatmap; history on the device; the service worker for offline use.
// window.genuine is the page's own API (the browser tests and benchmarks drive it):
//   await window.genuine.ready;  await window.genuine.inspectBytes(uint8array, "IMG_0001.jpg", product | null)
import { createInspector, PhotoError } from "./pipeline.js";
import { History, sha256, row, csv } from "./history.js";
import { Viewfinder } from "./camera.js";

const $ = (id) => document.getElementById(id);
const status = (t) => { $("status").textContent = t; };
const params = new URLSearchParams(location.search);

if ("serviceWorker" in navigator && params.get("sw") !== "0") {
  navigator.serviceWorker.register("sw.js").catch(e => console.warn("offline cache unavailable:", e));
}

// The inspector runs in a Web Worker (worker.js) so the page never freezes while it works; ?worker=0 runs it on this
// thread instead (to measure what the worker buys, and for browsers without module workers).
function workerInspector(threads, onProgress) {
  const w = new Worker(new URL("worker.js", import.meta.url), { type: "module" });
  const pending = new Map();
  let next = 0;
  const fail = (e) => { for (const p of pending.values()) p.reject(e); pending.clear(); };
  w.onmessage = ({ data }) => {
    if (data.progress !== undefined) { onProgress(data.progress); return; }
    const p = pending.get(data.id);
    pending.delete(data.id);
    if (!data.error) { p.resolve(data.value); return; }
    const e = data.error;
    p.reject(e.photo ? Object.assign(new PhotoError(e.source, e.kind, ""), { message: e.message }) : new Error(e.message));
  };
  w.onerror = (e) => { e.preventDefault(); fail(new Error(`the inspector stopped: ${e.message || "worker error"}`)); };
  const call = (op, args) => new Promise((resolve, reject) => {
    const id = ++next;
    pending.set(id, { resolve, reject });
    w.postMessage({ id, op, args });
  });
  return call("init", { base: new URL("./", location.href).href, threads }).then(info => ({
    ...info, worker: true,
    inspect: (blob, { name, product }) => call("inspect", { blob, name, product }),
    compareFace: (bytes, key) => call("compareFace", { bytes, key }),
  }));
}

function loadScript(src) {
  return new Promise((resolve, reject) => {
    const s = Object.assign(document.createElement("script"), { src, onload: resolve, onerror: () => reject(new Error(`${src} did not load`)) });
    document.head.append(s);
  });
}

async function threadInspector(threads, onProgress) {
  await loadScript("vendor/opencv/opencv.js");
  return { ...(await createInspector({ threads, onProgress })), worker: false };
}

let busy = Promise.resolve();
const ready = (async () => {
  const threads = Number(params.get("threads") || (navigator.hardwareConcurrency > 1 ? 2 : 1));
  const insp = params.get("worker") === "0" || typeof Worker === "undefined"
    ? await threadInspector(threads, status) : await workerInspector(threads, status);
  const s = insp.site;
  $("carries").textContent = `model ${s.model.sha256.slice(0, 12)} · ${s.products.length} products · built ${s.built}`;
  for (const p of s.products) $("product").add(new Option(p.product, p.product));
  $("about").innerHTML = "";
  const about = document.createElement("div");
  about.textContent = `Model ${s.model.name} (sha256 ${s.model.sha256}), built ${s.built} by genuine ${s.genuine}. `
    + `Products: ${s.products.map(p => p.product + (p.trained ? "" : " (not in training)")).join(", ")}. `
    + `Runs offline: onnxruntime-web ${s.vendor["onnxruntime-web"]} (${insp.threads} thread${insp.threads > 1 ? "s" : ""}), `
    + `OpenCV.js ${s.vendor["@techstark/opencv-js"]}, zxing-wasm ${s.vendor["zxing-wasm"]}`
    + `${insp.worker ? ", in a background worker" : ""}. Ready in ${Math.round(insp.readyMs)} ms.`;
  $("about").append(about);
  status("Ready: take a photo of the package.");
  return insp;
})().catch(e => { status(`The page could not start: ${e.message || e}`); throw e; });

const historyDb = History.open().catch(e => { console.warn("no history on this device:", e); return null; });

async function inspectBlob(blob, name, product) {
  const insp = await ready;
  try {
    const out = await insp.inspect(blob, { name, product: product || null });
    const h = await historyDb;
    if (h) await h.add(row(out.result, await sha256(blob)));
    return out;
  } catch (e) {
    if (e instanceof PhotoError) return { result: { source: name, verdict: "ERROR", reason: e.message, kind: e.kind }, view: null };
    throw e;
  }
}

// One inspection at a time, in order: a second photo waits for the first instead of racing it for memory.
function queued(fn) { const p = busy.then(fn, fn); busy = p.catch(() => {}); return p; }

async function run(blob, name) {
  $("result").hidden = false;
  $("verdict").textContent = "…"; $("verdict").className = "verdict"; $("reason").textContent = ""; $("facts").textContent = "";
  status(`Inspecting ${name}…`);
  await new Promise(r => setTimeout(r, 0));   // let the page paint before the work starts
  try {
    const { result, view } = await queued(() => inspectBlob(blob, name, $("product").value));
    show(result, view, blob);
    status("Done. Take the next photo when ready.");
  } catch (e) {
    show({ source: name, verdict: "ERROR", reason: `could not inspect this photo: ${e.message || e}` }, null, null);
    status("");
  }
  refreshHistory();
}

function show(result, view, blob) {
  $("verdict").textContent = result.verdict === "ERROR" ? "Not inspected" : result.verdict;
  $("verdict").className = `verdict ${result.verdict}`;
  $("reason").textContent = result.reason;
  const t = result.timing_ms || {};
  $("facts").textContent = result.verdict === "ERROR" ? "" :
    `${result.product || "product unknown"} · p(counterfeit) ${result.p_counterfeit ?? "–"} · ${Math.round(t.total || 0)} ms`;
  if (view && blob) drawPhoto(blob, view);
  if (view && view.face) drawFace(view); else { const c = $("face"); c.width = c.height = 1; }
}

async function drawPhoto(blob, view) {
  const bmp = await createImageBitmap(blob, { imageOrientation: "from-image" });
  const k = Math.min(1, 720 / Math.max(bmp.width, bmp.height)), c = $("photo");
  c.width = Math.round(bmp.width * k); c.height = Math.round(bmp.height * k);
  const ctx = c.getContext("2d");
  ctx.drawImage(bmp, 0, 0, c.width, c.height);
  bmp.close();
  if (view.corners) {
    ctx.strokeStyle = "#ffd400"; ctx.lineWidth = Math.max(2, c.width / 200);
    ctx.beginPath();
    view.corners.forEach(([x, y], i) => (i ? ctx.lineTo : ctx.moveTo).call(ctx, (x + 0.5) * k, (y + 0.5) * k));
    ctx.closePath(); ctx.stroke();
  }
}

// infer/heatmap.py overlay_face: the map smoothed over about a cell, scaled from its median to its maximum, tinted
// with the same ramp; failing zones outlined in red.
const STOPS = [[0, 0, 80], [0, 90, 200], [0, 200, 200], [250, 230, 0], [230, 20, 20]];
function ramp(v) {
  const x = Math.min(4, Math.max(0, v * 4)), i = Math.min(3, Math.floor(x)), f = x - i;
  return STOPS[i].map((a, c) => a + (STOPS[i + 1][c] - a) * f);
}
function drawFace(view) {
  const c = $("face"), [fw, fh] = view.faceSize, k = Math.max(1, Math.floor(360 / fw));
  c.width = fw * k; c.height = fh * k;
  const ctx = c.getContext("2d");
  const tmp = new OffscreenCanvas(fw, fh);
  tmp.getContext("2d").putImageData(view.face, 0, 0);
  ctx.imageSmoothingEnabled = true;
  ctx.drawImage(tmp, 0, 0, c.width, c.height);
  const { data, h, w } = view.heat;
  const sorted = Float32Array.from(data).sort(), lo = sorted[sorted.length >> 1], hi = sorted[sorted.length - 1];
  const img = ctx.getImageData(0, 0, c.width, c.height), px = img.data;
  for (let y = 0; y < c.height; y++) for (let x = 0; x < c.width; x++) {
    const hy = Math.min(h - 1, Math.floor(y * h / c.height)), hx = Math.min(w - 1, Math.floor(x * w / c.width));
    const m = Math.min(1, Math.max(0, (data[hy * w + hx] - lo) / Math.max(hi - lo, 1e-6)));
    const a = 0.45 * Math.sqrt(m), col = ramp(m), i = 4 * (y * c.width + x);
    for (let ch = 0; ch < 3; ch++) px[i + ch] = px[i + ch] * (1 - a) + col[ch] * a;
  }
  ctx.putImageData(img, 0, 0);
  ctx.strokeStyle = "#e61414"; ctx.lineWidth = 3;
  for (const b of view.zoneBoxes || []) ctx.strokeRect(b[0] * c.width, b[1] * c.height, (b[2] - b[0]) * c.width, (b[3] - b[1]) * c.height);
}

async function refreshHistory() {
  const h = await historyDb;
  if (!h) return;
  const rows = (await h.all()).slice(-50).reverse(), body = $("history");
  body.replaceChildren(...rows.map(r => {
    const tr = document.createElement("tr");
    for (const v of [r.at.slice(11, 19), r.source, r.verdict, r.product || ""]) { const td = document.createElement("td"); td.textContent = v; tr.append(td); }
    tr.children[2].className = r.verdict;
    return tr;
  }));
}

for (const id of ["shoot", "pick"]) {
  $(id).addEventListener("change", (e) => {
    const f = e.target.files[0];
    if (f) run(f, f.name);
    e.target.value = "";
  });
}

$("export").addEventListener("click", async () => {
  const h = await historyDb;
  const blob = new Blob([csv(h ? await h.all() : [])], { type: "text/csv" });
  const a = Object.assign(document.createElement("a"), { href: URL.createObjectURL(blob), download: `genuine-inspections-${new Date().toISOString().slice(0, 10)}.csv` });
  a.click();
  setTimeout(() => URL.revokeObjectURL(a.href), 1000);
});
$("clear").addEventListener("click", async () => {
  if (!confirm("Delete this device's inspection history?")) return;
  const h = await historyDb;
  if (h) await h.clear();
  refreshHistory();
});

// The live viewfinder: only where the browser gives a camera (HTTPS or localhost).
let cam = null, adviceTimer = null;
if (Viewfinder.available()) $("live").hidden = false;
$("live").addEventListener("click", async () => {
  try {
    cam = await Viewfinder.start(document.querySelector("#viewfinder video"));
    $("viewfinder").style.display = "block";
    const site = (await ready).site;
    adviceTimer = setInterval(() => { $("live-advice").textContent = cam.advice(site).join(" · "); }, 500);
  } catch (e) { status(`No live camera here (${e.message || e}): use Take photo.`); }
});
function closeCamera() { clearInterval(adviceTimer); if (cam) cam.stop(); cam = null; $("viewfinder").style.display = "none"; }
$("close-live").addEventListener("click", closeCamera);
$("capture").addEventListener("click", async () => {
  if (!cam) return;
  const blob = await cam.capture();
  closeCamera();
  run(blob, `camera-${new Date().toISOString().replace(/[:.]/g, "-")}.jpg`);
});

refreshHistory();

window.genuine = {
  ready,
  async inspectBytes(bytes, name, product = null) {
    const blob = new Blob([bytes]);
    const { result } = await queued(() => inspectBlob(blob, name, product));
    return result;
  },
  async compareFace(bytes, key) { return (await ready).compareFace(bytes, key); },
  async show(bytes, name) { return run(new Blob([bytes]), name); },
};
