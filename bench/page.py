"""Benchmark and parity check: the officer's page (headless Debian chromium) against `genuine inspect` (Python) on the
same photos, in the same run.

    python bench/page.py SITE MODEL.onnx --templates DB PHOTOS... [--threads 1,2] [--product P] [--json out.json]
    python bench/page.py site/ checkpoints/synthpack/model.onnx --templates runs/refs.db @runs/test-00-fiisfi.txt

For each photo: both verdicts, p(counterfeit), where each put the package's corners (the page identifies with ORB,
Python with SIFT; both start the face from the same ORB fit, infer/orb.py), and the model's outputs on the same face (Python's rectified face fed to the page's
onnxruntime-web). Then speed: the page from opening (service worker cache warm) to ready, and per photo, with 1 and 2
wasm threads, against the Python inspector on one thread. Needs chromium (apt) and playwright (the dev extra).
"""
from __future__ import annotations

import argparse
import base64
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
        "--disable-component-update", "--disable-sync"]


def photos_of(items: list[str]) -> list[Path]:
    out = []
    for it in items:
        if it.startswith("@"):
            out += [Path(x) for x in Path(it[1:]).read_text().split() if x]
        else:
            out.append(Path(it))
    return out


def python_side(model, templates, photos, products):
    """Python's results, its faces (for the same-face check) and seconds per photo."""
    from genuine.infer.inspector import Inspector
    from genuine.infer.model_input import face_model_input
    from genuine.infer.rectify import rectify_photo

    insp = Inspector(model, templates=templates)
    results, faces, secs = [], [], []
    for p, product in zip(photos, products):
        t0 = time.perf_counter()
        r = insp.inspect(str(p), product=product)
        secs.append(time.perf_counter() - t0)
        results.append(r.to_dict())
        rect, _ = rectify_photo(str(p), insp.templates, insp.model.face_size, product=product)
        if rect.ok:
            x, _ = face_model_input(rect.face, rect.density, insp.model.face_size)
            tin = insp.judge.template_input(rect.template)
            out = insp.model.compare(x[None], tin[None])
            faces.append((x, rect.template.key, float(out["p_counterfeit"][0]), out["heatmap"][0]))
        else:
            faces.append(None)
    return results, faces, secs


def open_page(browser, url: str, threads: int):
    page = browser.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda e: errors.append(str(e)))
    t0 = time.perf_counter()
    page.goto(f"{url}index.html?threads={threads}")
    page.evaluate("() => window.genuine.ready.then(() => true)")
    return page, time.perf_counter() - t0, errors


def page_inspect(page, path: Path, product):
    b64 = base64.b64encode(path.read_bytes()).decode()
    t0 = time.perf_counter()
    res = page.evaluate("async ([b, n, p]) => window.genuine.inspectBytes(Uint8Array.from(atob(b), c => c.charCodeAt(0)), n, p)",
                        [b64, str(path), product])
    return res, time.perf_counter() - t0


def corner_error(a: dict, b: dict):
    """Largest distance between the two rectifications' corners, in % of the package's width in the photo."""
    ca, cb = (a.get("rectification") or {}).get("corners"), (b.get("rectification") or {}).get("corners")
    if not ca or not cb:
        return None
    ca, cb = np.array(ca), np.array(cb)
    width = np.linalg.norm(ca[1] - ca[0])
    return float(np.max(np.linalg.norm(ca - cb, axis=1)) / max(width, 1e-6) * 100)


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("site")
    ap.add_argument("model")
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--templates", required=True)
    ap.add_argument("--product", help="declare the product (alignment only); 'folder': each photo's folder name")
    ap.add_argument("--threads", default="1,2")
    ap.add_argument("--json", help="write every number here")
    ap.add_argument("--chromium", default="/usr/bin/chromium")
    args = ap.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from genuine.infer.page_serve import serve

    photos = photos_of(args.photos)
    products = [p.parent.name if args.product == "folder" else args.product for p in photos]
    print(f"{len(photos)} photos; Python inspector first")
    py, faces, py_s = python_side(args.model, args.templates, photos, products)
    server, url = serve(args.site)
    report: dict = {"photos": len(photos), "python_ms_median": 1000 * statistics.median(py_s), "threads": {}}
    try:
        with sync_playwright() as pw:
            browser = pw.chromium.launch(executable_path=args.chromium, headless=True, args=ARGS)
            for n, threads in enumerate(int(t) for t in args.threads.split(",")):
                ctx = browser.new_context()
                page, cold, errors = open_page(ctx, url, threads)   # first visit: the service worker caches the site
                page.evaluate("() => navigator.serviceWorker.ready.then(() => true)")
                page.close()
                page, warm, errors = open_page(ctx, url, threads)   # reopened: from the cache
                rows, secs = [], []
                for p, product in zip(photos, products):
                    res, s = page_inspect(page, p, product)
                    secs.append(s)
                    rows.append(res)
                again, _ = page_inspect(page, photos[0], products[0])
                info = {"ready_cold_s": cold, "ready_warm_s": warm, "per_photo_ms_median": 1000 * statistics.median(secs),
                        "page_threads": page.evaluate("async () => (await window.genuine.ready).threads"),
                        "same_photo_twice_equal": again["verdict"] == rows[0]["verdict"]
                        and again.get("p_counterfeit") == rows[0].get("p_counterfeit"), "errors": errors}
                if n == 0:   # parity once: the numbers do not depend on threads
                    same = [a["verdict"] == b["verdict"] for a, b in zip(py, rows)]
                    dp = [abs(a["p_counterfeit"] - b["p_counterfeit"]) for a, b in zip(py, rows)
                          if a.get("p_counterfeit") is not None and b.get("p_counterfeit") is not None]
                    ce = [c for c in (corner_error(a, b) for a, b in zip(py, rows)) if c is not None]
                    face_p, face_h = [], []
                    for f in faces:
                        if f is None:
                            continue
                        x, key, p_py, h_py = f
                        o = page.evaluate("async ([b, k]) => { const r = await window.genuine.compareFace(Uint8Array.from(atob(b), c => c.charCodeAt(0)), k); return {p: r.p_counterfeit, h: Array.from(r.heatmap.data)}; }",
                                          [base64.b64encode(x.tobytes()).decode(), key])
                        face_p.append(abs(o["p"] - p_py))
                        face_h.append(float(np.max(np.abs(np.array(o["h"]) - h_py.ravel()))))
                    named = [((a.get("rectification") or {}).get("product"), (b.get("rectification") or {}).get("product"))
                             for a, b in zip(py, rows)]
                    report["parity"] = {
                        "verdicts_equal": sum(same) / len(same), "products_equal": sum(x == y for x, y in named) / len(named),
                        "named_python": sum(x is not None for x, _ in named), "named_page": sum(y is not None for _, y in named),
                        "mismatches": [
                            {"photo": str(p), "python": a["verdict"], "page": b["verdict"], "python_reason": a["reason"],
                             "page_reason": b["reason"]} for p, a, b, s in zip(photos, py, rows, same) if not s],
                        "p_abs_diff_median": statistics.median(dp) if dp else None, "p_abs_diff_max": max(dp) if dp else None,
                        "corner_err_pct_median": statistics.median(ce) if ce else None,
                        "corner_err_pct_max": max(ce) if ce else None,
                        "same_face_p_max_diff": max(face_p) if face_p else None,
                        "same_face_heatmap_max_diff": max(face_h) if face_h else None,
                        "python_verdicts": _count(py), "page_verdicts": _count(rows),
                        "rows": [{"photo": str(p), "python": a["verdict"], "page": b["verdict"],
                                  "p_python": a.get("p_counterfeit"), "p_page": b.get("p_counterfeit"),
                                  "corner_err_pct": corner_error(a, b),
                                  "product": [(a.get("rectification") or {}).get("product"),
                                              (b.get("rectification") or {}).get("product")],
                                  "refined_px": [(a.get("rectification") or {}).get("refined_px"),
                                                 (b.get("rectification") or {}).get("refined_px")],
                                  "inliers": [(a.get("rectification") or {}).get("inliers"),
                                              (b.get("rectification") or {}).get("inliers")],
                                  "start": [(a.get("rectification") or {}).get("start"),
                                            (b.get("rectification") or {}).get("start")]}
                                 for p, a, b in zip(photos, py, rows)]}
                report["threads"][threads] = info
                ctx.close()
            browser.close()
    finally:
        server.shutdown()
    size = sum(f.stat().st_size for f in Path(args.site).rglob("*") if f.is_file())
    report["site_mb"] = size / 1e6
    print(json.dumps({**report, "parity": {k: v for k, v in report.get("parity", {}).items() if k != "rows"}}, indent=1))
    if args.json:
        Path(args.json).write_text(json.dumps(report, indent=1))
        print(f"Results saved to {args.json}")
    return 0


def _count(rows):
    out: dict = {}
    for r in rows:
        out[r["verdict"]] = out.get(r["verdict"], 0) + 1
    return out


if __name__ == "__main__":
    sys.exit(main())
