"""Benchmark: the genuine-variation score per face, as the inspector runs it, against the naive residual.

    python bench/variation_speed.py STORE.db [--size 320x208] [--faces 20] [--repeat 3]

STORE.db: a reference store with genuine photos (genuine data references DATA --db STORE.db). For the first product
with a variation model, its stored faces at the model's input size are scored one at a time on one thread:
`score` (the inspector's path: the median's high-passed blurs computed once per model) against the naive residual
that filters the difference of query and median for every blur (what infer/variation.py did before), and
the two are checked to agree. Prints JSON: ms per face (median over faces and repeats), the ratio, max |diff|.
"""
from __future__ import annotations

import argparse
import io
import json
import sqlite3
import time

import cv2
import numpy as np
from PIL import Image

from genuine.infer.preprocess import face_input
from genuine.infer.variation import BLURS, _high_pass, _photometric, _pool, _refine, residual
from genuine.infer.variation_store import VariationModels


def naive_residual(q: np.ndarray, median: np.ndarray) -> np.ndarray:
    q = _photometric(_refine(q.astype(np.float32), median), median)
    d = _high_pass(q - median)
    best = float(np.mean(d * d))
    for s in BLURS:
        for a, b in ((cv2.GaussianBlur(q, (0, 0), s), median), (q, cv2.GaussianBlur(median, (0, 0), s))):
            hp = _high_pass(a - b)
            e = float(np.mean(hp * hp))
            if e < best:
                best, d = e, hp
    lum = d.mean(-1, keepdims=True)
    return np.concatenate([lum, d - lum], -1)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("store")
    ap.add_argument("--size", default="320x208")
    ap.add_argument("--faces", type=int, default=20)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    cv2.setNumThreads(1)
    size = tuple(int(v) for v in args.size.split("x"))
    conn = sqlite3.connect(args.store)
    vm = VariationModels(conn, size)
    if not len(vm):
        raise SystemExit(f"{args.store}: no product with enough genuine photos")
    key = sorted(vm.groups)[0]
    model = vm.get(key)
    faces = [face_input(np.asarray(Image.open(io.BytesIO(b)).convert("RGB")), size) for (b,) in conn.execute(
        "SELECT face FROM genuine_faces WHERE product = ? AND template = ? LIMIT ?", (key[0], key[1], args.faces))]

    def timed(fn) -> float:
        fn(faces[0])   # warm-up
        t = []
        for _ in range(args.repeat):
            for f in faces:
                t0 = time.perf_counter()
                fn(f)
                t.append(1000 * (time.perf_counter() - t0))
        return float(np.median(t))

    ours = timed(lambda f: _pool(np.abs(residual(f, model.median, model.ref)) / model.spread))
    naive = timed(lambda f: _pool(np.abs(naive_residual(f, model.median)) / model.spread))
    diff = max(float(np.abs(residual(f, model.median, model.ref) - naive_residual(f, model.median)).max())
               for f in faces)
    print(json.dumps({"product": key[0], "faces": len(faces), "size": list(size), "threads": 1,
                      "ms_per_face": round(ours, 2), "naive_ms_per_face": round(naive, 2),
                      "speedup": round(naive / ours, 2), "max_abs_diff_residual": diff}, indent=1))


if __name__ == "__main__":
    main()
