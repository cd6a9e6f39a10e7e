"""Benchmark: SynthPack generation speed (photos/s) and JPEG sizes on this machine.

    python bench/synth_speed.py                      # 384, 1600 and 4032 px, 1 worker and all cores
    python bench/synth_speed.py --sizes 1600         # one size

Compares one worker with all cores in the same run (the ratio holds on a noisy machine; absolute numbers do not),
reports what the photos weigh (from capture.PHONE_SIZE up they are saved as a phone would: 3-5 MB at 12 MP is
what a phone benchmark's decode has to chew), and times where a photo's cost goes.
"""
from __future__ import annotations

import argparse
import os
import platform
import tempfile
import time
from pathlib import Path

import numpy as np

from genuine.train.synthpack.capture import photograph
from genuine.train.synthpack.design import make_design
from genuine.train.synthpack.generate import face_size, generate
from genuine.train.synthpack.render import Item, render

# size: (products, items per class, photos per item), about 20-40 s of one core each
WORK = {384: (8, 12, 3), 1600: (2, 4, 3), 4032: (1, 2, 2)}


def run(size: int, workers: int, products: int, items: int, photos: int) -> tuple[float, np.ndarray]:
    """(photos/s, the JPEGs' sizes in MB) of one `genuine synth` run."""
    with tempfile.TemporaryDirectory() as tmp:
        info = generate(f"{tmp}/sp", products=products, items_per_class=items, photos_per_item=photos, size=size,
                        workers=workers, progress=False)
        mb = np.array([p.stat().st_size for p in Path(tmp, "sp").rglob("*.jpg")]) / 1e6
    return info["photos_per_second"], mb


def breakdown(size: int, n: int) -> dict:
    """Milliseconds per flat package render and per photo of it, in this process."""
    d = make_design(0, 0)
    item = Item("00000001", "AB10", (0.0, 0.0), 1.0, 0.2, 1)
    t = time.perf_counter()
    for _ in range(n):
        pkg, _ = render(d, item, face_size(size)[0])
    t_render = (time.perf_counter() - t) / n
    t = time.perf_counter()
    for k in range(n):
        photograph(pkg, np.random.default_rng(k), size)
    t_photo = (time.perf_counter() - t) / n
    return {"render_item_ms": round(1000 * t_render, 1), "photograph_ms": round(1000 * t_photo, 1)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--sizes", default="384,1600,4032", help="photo long sides, comma-separated")
    args = ap.parse_args()
    cores = os.cpu_count() or 1
    print(f"machine: {platform.processor() or platform.machine()}, {cores} cores, python {platform.python_version()}")
    for size in (int(s) for s in args.sizes.split(",")):
        products, items, photos = WORK.get(size, WORK[1600])
        one, mb = run(size, 1, products, items, photos)
        all_, _ = run(size, cores, products, items, photos)
        print(f"{size} px, {len(mb)} photos: 1 worker {one:.2f} photos/s; {cores} workers {all_:.2f} photos/s "
              f"(x{all_ / one:.2f}); JPEG {mb.mean():.3f} MB mean, {np.median(mb):.3f} median, "
              f"{mb.min():.3f}-{mb.max():.3f}")
        print(f"{size} px per-photo cost:", breakdown(size, 10 if size < 2000 else 3))


if __name__ == "__main__":
    main()
