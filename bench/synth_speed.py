"""Benchmark: SynthPack generation speed (photos/s) on this machine.

    python bench/synth_speed.py                 # 384 px, 1 and all workers, plus a few 12 MP photos

Compares one worker with all cores in the same run (the ratio holds on a noisy
machine; absolute numbers do not), and times where a photo's cost goes.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time

import numpy as np

from genuine.train.synthpack.capture import photograph
from genuine.train.synthpack.design import make_design
from genuine.train.synthpack.generate import generate
from genuine.train.synthpack.render import Item, render


def run(size: int, workers: int, products: int, items: int, photos: int) -> float:
    with tempfile.TemporaryDirectory() as tmp:
        info = generate(f"{tmp}/sp", products=products, items_per_class=items, photos_per_item=photos, size=size,
                        workers=workers, progress=False)
    return info["photos_per_second"]


def breakdown(size: int, n: int = 20) -> dict:
    d = make_design(0, 0)
    item = Item("00000001", "AB10", (0.0, 0.0), 1.0, 0.2, 1)
    t = time.perf_counter()
    for _ in range(n):
        pkg, _ = render(d, item, int(size * 0.95))
    t_render = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for k in range(n):
        photograph(pkg, np.random.default_rng(k), size)
    t_photo = (time.perf_counter() - t) / n
    return {"render_item_ms": 1000 * t_render, "photograph_ms": 1000 * t_photo}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--products", type=int, default=8)
    ap.add_argument("--items", type=int, default=12)
    ap.add_argument("--photos", type=int, default=3)
    args = ap.parse_args()
    cores = os.cpu_count()
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, python {platform.python_version()}")
    n = args.products * args.items * 2 * args.photos
    one = run(384, 1, args.products, args.items, args.photos)
    all_ = run(384, cores, args.products, args.items, args.photos)
    print(f"384 px, {n} photos: 1 worker {one:.1f} photos/s; {cores} workers {all_:.1f} photos/s "
          f"(x{all_ / one:.2f})")
    print("384 px per-photo cost:", {k: round(v, 1) for k, v in breakdown(384).items()})
    big = run(4032, cores, 1, 2, 2)
    print(f"4032x3024 (12 MP), 8 photos, {cores} workers: {big:.2f} photos/s")
    print("12 MP per-photo cost:", {k: round(v, 1) for k, v in breakdown(4032, 2).items()})


if __name__ == "__main__":
    main()
