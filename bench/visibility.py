"""Benchmark: how much of each defect survives the camera and the model's input (no model involved).

    python bench/visibility.py [--items 16] [--difficulty medium] [--photo-sizes 384,768,1536] [--size 256]

For each defect family, each item is rendered twice with the same physical item (serial, print
offset, ink, wear) and photographed twice with the *same* capture (pose, light, noise, JPEG): once
genuine, once counterfeit. The two photos then differ by the defect alone, so the pixels that differ
are what any model could possibly see. Counted at the model input for
  - one view: the whole photo letterboxed to --size (the inspector's default), and
  - native tiles: the photo at its own resolution, cut into --size crops (bench/views.py's tiles).
"visible" = pixels where some channel differs by more than --threshold grey levels (the capture's sensor
noise alone has a standard deviation of 1.5-9 grey levels). Genuine-vs-genuine rows use two different
genuine items under the same capture: the item-to-item tolerance a model must learn to ignore.
"""
from __future__ import annotations

import argparse
import io
import json
import time

import numpy as np
from PIL import Image

from genuine.infer.preprocess import prepare
from genuine.train.synthpack.defects import FAMILIES, SEVERITY
from genuine.train.synthpack.generate import Plan, make_package, shoot


def _views(jpeg: bytes, size: int) -> tuple[np.ndarray, np.ndarray]:
    img = Image.open(io.BytesIO(jpeg)).convert("RGB")
    return prepare(img, size).astype(np.int16), np.asarray(img, np.int16)


def _visible(a: np.ndarray, b: np.ndarray, threshold: int) -> int:
    return int((np.abs(a - b).max(axis=-1) > threshold).sum())


def measure(family: str, items: int, photo_size: int, size: int, difficulty: str, strength: float,
            threshold: int, seed: int = 0) -> dict:
    """Median visible pixels (one view, native) over `items` twins spread over products 0-7."""
    lo, hi = SEVERITY[difficulty]
    one, native = [], []
    for i in range(items):
        product, number = i % 8, 10_000 + i  # numbers no benchmark uses: nothing here is a training item
        sev = lo + (hi - lo) * (i + 0.5) / items
        gen = Plan(seed, product, number, "genuine", "", 0.0, "test", 1, photo_size, strength)
        if family == "genuine":  # a second genuine item of the same product
            other = Plan(seed, product, number + 5_000, "genuine", "", 0.0, "test", 1, photo_size, strength)
        else:
            other = Plan(seed, product, number, "counterfeit", family, sev, "test", 1, photo_size, strength)
        shots = []
        for q in (gen, other):  # the second genuine item is shot with the first one's capture
            jpeg, _ = shoot(gen, make_package(q)[0], 0)
            shots.append(_views(jpeg, size))
        one.append(_visible(shots[0][0], shots[1][0], threshold))
        native.append(_visible(shots[0][1], shots[1][1], threshold))
    return {"one_view": float(np.median(one)), "native": float(np.median(native)),
            "one_view_zero": float(np.mean(np.array(one) == 0))}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--items", type=int, default=16)
    ap.add_argument("--difficulty", default="medium", choices=list(SEVERITY))
    ap.add_argument("--photo-sizes", default="384,768,1536")
    ap.add_argument("--size", type=int, default=256, help="model input size")
    ap.add_argument("--capture-strength", type=float, default=1.0)
    ap.add_argument("--threshold", type=int, default=12, help="grey levels that count as a visible change")
    args = ap.parse_args()
    t0 = time.perf_counter()
    rows = []
    for photo in [int(s) for s in args.photo_sizes.split(",")]:
        for fam in ("genuine",) + tuple(FAMILIES):
            r = measure(fam, args.items, photo, args.size, args.difficulty, args.capture_strength, args.threshold)
            rows.append({"photo_px": photo, "family": fam, **r})
            print(f"photo {photo:5d}  {fam:16s}  one view {r['one_view']:8.0f}  native {r['native']:8.0f}  "
                  f"one view shows nothing for {100 * r['one_view_zero']:.0f}%", flush=True)
    print(json.dumps({"args": vars(args), "rows": rows, "seconds": round(time.perf_counter() - t0, 1)}))


if __name__ == "__main__":
    main()
