// The inspector in a Web Worker: decoding, rectification, the model, the genuine variation and the zone checks run
// off the page's main thread, so the page keeps drawing and answering while a photo is inspected (1-1.5 s in wasm
// for a 12 MP photo; on the main thread the page froze for up to 0.4 s at a time, BENCHMARKS.md session 14).
//
//   const w = new Worker("worker.js", {type: "module"});
//   w.postMessage({id, op: "init" | "inspect" | "compareFace", args})
//   -> {id, value} | {id, error: {message, kind, source, photo}}; and {progress: text} while it starts
import { createInspector, PhotoError } from "./pipeline.js";

let insp = null;

// OpenCV.js is a classic script (a global `cv`); a module worker has no importScripts, so its text is evaluated in
// this worker's global scope. It comes from the site like every other file (the service worker's cache offline).
async function loadOpenCV(base) {
  const r = await fetch(new URL("vendor/opencv/opencv.js", base));
  if (!r.ok) throw new Error(`vendor/opencv/opencv.js: ${r.status} ${r.statusText}`);
  (0, eval)(await r.text());
}

const ops = {
  async init({ base, threads }) {
    await loadOpenCV(base);
    insp = await createInspector({ base, threads, onProgress: (text) => self.postMessage({ progress: text }) });
    return { site: insp.site, readyMs: insp.readyMs, threads: insp.threads };
  },
  inspect: ({ blob, name, product }) => insp.inspect(blob, { name, product }),
  compareFace: ({ bytes, key }) => insp.compareFace(bytes, key),
};

self.onmessage = async ({ data: { id, op, args } }) => {
  try {
    self.postMessage({ id, value: await ops[op](args) });
  } catch (e) {
    self.postMessage({ id, error: { message: e.message || String(e), kind: e.kind, source: e.source,
                                    photo: e instanceof PhotoError } });
  }
};
