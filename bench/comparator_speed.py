"""Benchmark: photo -> verdict on the comparator path (decode, rectify, comparator, zone checks), one thread, per stage.

    python bench/comparator_speed.py MODEL.onnx DATA [--templates STORE.db] [--photos 24] [--repeat 3] [--naive]
                                     [--full-decode]

MODEL: an exported comparator; DATA: a SynthPack root (its templates; e.g. one generated with --size 4032 for
12 MP phone photos); --templates: a reference store of the products' genuine photos (genuine data references),
so that the genuine variation and the inks' tolerances are checked too, as in the field. Every stage runs on one thread (OpenCV and onnxruntime), as on a handheld. Reported: the
median per stage and in total, and the same photos through the naive path measured in the same run: full-size
SIFT on the whole photo with brute-force matching against every template (no shrink, no FLANN): what
finding the face costs without this project's levers (ours includes the warp as well). --full-decode also times
the path before DCT-scaled decoding (full-resolution decode, face warped at 1024 px), photo to verdict. Always:
a plain full decode of each photo (PIL, EXIF transpose), so that the total reads as a ratio to it.
"""
from __future__ import annotations

import argparse
import json
import platform
import statistics
import time
from pathlib import Path

import cv2
import numpy as np

from genuine.infer.inspector import Inspector
from genuine.infer.photo import load_photo


def median_ms(xs) -> float:
    return round(1000 * statistics.median(xs), 1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--templates", help="a reference store (default: DATA's templates, no genuine photos)")
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--naive", action="store_true", help="also time full-size SIFT + brute-force matching")
    ap.add_argument("--full-decode", action="store_true", help="also time full decode + 1024 px face, to a verdict")
    args = ap.parse_args()
    cv2.setNumThreads(1)
    insp = Inspector(args.model, threads=1, templates=args.templates or args.data)
    photos = sorted(Path(args.data).glob("*/*/*.jpg"))
    photos = [photos[i] for i in np.linspace(0, len(photos) - 1, min(args.photos, len(photos))).astype(int)]
    stages = {k: [] for k in ("decode", "rectify", "model", "variation", "zones", "total")}
    ok, sizes = [], []
    for _ in range(args.repeat):
        for p in photos:
            r = insp.inspect(p)
            for k in stages:
                if k in r.timing_ms:
                    stages[k].append(r.timing_ms[k] / 1000)
            ok.append(bool(r.rectification and r.rectification["ok"]))
    for p in photos[:3]:
        sizes.append(Path(p).stat().st_size)
    full = []
    for p in photos:
        t0 = time.perf_counter()
        load_photo(p).load()
        full.append(time.perf_counter() - t0)
    out = {"machine": platform.processor() or platform.machine(), "photos": len(photos), "repeat": args.repeat,
           "photo_px": list(load_photo(photos[0]).size), "file_mb": round(statistics.mean(sizes) / 1e6, 2),
           "ms": {k: median_ms(v) for k, v in stages.items() if v},
           "share": {k: round(statistics.median(v) / statistics.median(stages["total"]), 3)
                     for k, v in stages.items() if v and k != "total"},
           "rectified": round(float(np.mean(ok)), 3), "full_decode_ms": median_ms(full),
           "total_over_full_decode": round(statistics.median(stages["total"]) / statistics.median(full), 2)}
    if args.naive:
        sift, bf, t = cv2.SIFT_create(), cv2.BFMatcher(cv2.NORM_L2), []
        for p in photos:
            t0 = time.perf_counter()
            rgb = np.asarray(load_photo(p))
            kp, d = sift.detectAndCompute(cv2.cvtColor(rgb, cv2.COLOR_RGB2GRAY), None)
            for tm in insp.templates.templates:
                bf.knnMatch(tm.descriptors, d, k=2)
            t.append(time.perf_counter() - t0)
        out["naive_decode_plus_find_ms"] = median_ms(t)
        ours = statistics.median(stages["decode"]) + statistics.median(stages["rectify"])
        out["speedup_decode_plus_rectify"] = round(statistics.median(t) / ours, 2)
    if args.full_decode:
        from genuine.infer.preprocess import face_input
        from genuine.infer.rectify import rectify

        t = []
        for p in photos:
            t0 = time.perf_counter()
            r = rectify(np.asarray(load_photo(p)), insp.templates)
            if r.ok:
                insp.model.compare(face_input(r.face, insp.model.face_size)[None],
                                   insp.judge.template_input(r.template)[None])
            t.append(time.perf_counter() - t0)
        out["full_decode_total_ms"] = median_ms(t)
        out["speedup_total_vs_full_decode"] = round(statistics.median(t) / statistics.median(stages["total"]), 2)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
