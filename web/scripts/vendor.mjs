// Copies the files the page serves from node_modules into web/vendor/, which the Python package ships
// (genuine page build copies them into every site). Run by `npm ci` (postinstall); nothing is fetched here.
import { cpSync, mkdirSync, rmSync, existsSync, writeFileSync, readFileSync } from "node:fs";
import { dirname, join } from "node:path";
import { fileURLToPath } from "node:url";

const web = join(dirname(fileURLToPath(import.meta.url)), "..");
const nm = join(web, "node_modules");
const out = join(web, "vendor");
const FILES = {
  // onnxruntime-web, wasm only (no WebGPU/WebGL: a handheld's GPU is not a given; one definition of the numbers)
  "ort/ort.wasm.min.mjs": "onnxruntime-web/dist/ort.wasm.min.mjs",
  "ort/ort-wasm-simd-threaded.mjs": "onnxruntime-web/dist/ort-wasm-simd-threaded.mjs",
  "ort/ort-wasm-simd-threaded.wasm": "onnxruntime-web/dist/ort-wasm-simd-threaded.wasm",
  // OpenCV.js 4.12 (ORB, MAGSAC, ECC, warpPerspective; its wasm is inlined in the script)
  "opencv/opencv.js": "@techstark/opencv-js/dist/opencv.js",
  // zxing-wasm's reader: the same C++ library as the zxing-cpp wheel the Python inspector reads barcodes with
  "zxing/es/reader/index.js": "zxing-wasm/dist/es/reader/index.js",
  "zxing/es/share.js": "zxing-wasm/dist/es/share.js",
  "zxing/reader/zxing_reader.wasm": "zxing-wasm/dist/reader/zxing_reader.wasm",
};
rmSync(out, { recursive: true, force: true });
const versions = {};
for (const [to, from] of Object.entries(FILES)) {
  const src = join(nm, from);
  if (!existsSync(src)) throw new Error(`vendor: ${from} is missing from node_modules (npm ci in web/)`);
  mkdirSync(dirname(join(out, to)), { recursive: true });
  cpSync(src, join(out, to));
  const pkg = from.startsWith("@") ? from.split("/").slice(0, 2).join("/") : from.split("/")[0];
  versions[pkg] = JSON.parse(readFileSync(join(nm, pkg, "package.json"), "utf8")).version;
}
writeFileSync(join(out, "versions.json"), JSON.stringify(versions, null, 2) + "\n");
console.log(`vendor: ${Object.keys(FILES).length} files into web/vendor/ (${JSON.stringify(versions)})`);
