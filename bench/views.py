"""Benchmark: one resized view against several native-resolution crops (tiles), same model, same photos.

    python bench/views.py checkpoints/synthpack/best.pt datasets/synthpack [--split test]

Scores every photo (a) letterboxed whole to the model size, (b) as overlapping size x size tiles of the
photo decoded at 2x the model size, aggregated by max and by mean of the tile logits. AUROC and TPR at
1% FPR are threshold-free, so the comparison does not depend on calibration.
"""
from __future__ import annotations

import argparse
import json
import time

import numpy as np
import torch
from PIL import Image

from genuine.infer.photo import load_photo
from genuine.infer.preprocess import decode_side, prepare
from genuine.train import checkpoint
from genuine.train.data import select
from genuine.train.layout import discover
from genuine.train.metrics import binary_metrics


def tiles(img: Image.Image, size: int, overlap: float = 0.25) -> np.ndarray:
    """Crops of size x size at the photo's native resolution covering all of it: (K, size, size, 3) uint8.

    The alternative to one resized view: fine print keeps every pixel, at K times the compute.
    A side shorter than `size` is letterboxed within its crop.
    """
    w, h = img.size
    step = max(1, int(size * (1 - overlap)))

    def starts(n):
        if n <= size:
            return [0]
        k = int(np.ceil((n - size) / step)) + 1
        return [round(i * (n - size) / (k - 1)) for i in range(k)]

    out = []
    for y in starts(h):
        for x in starts(w):
            crop = img.crop((x, y, min(w, x + size), min(h, y + size)))
            out.append(prepare(crop, size) if crop.size != (size, size) else np.asarray(crop))
    return np.stack(out)



@torch.no_grad()
def logits(net, batch: np.ndarray) -> np.ndarray:
    return net(torch.from_numpy(batch))["logit"].numpy()


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("data")
    ap.add_argument("--split", default="test")
    args = ap.parse_args()
    ckpt = checkpoint.load(args.checkpoint)
    net = checkpoint.build_from(ckpt)
    size = ckpt["meta"]["preprocess"]["size"]
    recs = select(discover(args.data), args.split)
    y = np.array([r.label == "counterfeit" for r in recs], int)
    single, tmax, tmean, n_tiles = [], [], [], []
    t_single = t_tiles = 0.0
    for r in recs:
        img = load_photo(r.path, min_side=decode_side(size))
        t0 = time.perf_counter()
        single.append(logits(net, prepare(img, size)[None])[0])
        t1 = time.perf_counter()
        lt = logits(net, tiles(img, size))
        t_tiles += time.perf_counter() - t1
        t_single += t1 - t0
        tmax.append(lt.max())
        tmean.append(lt.mean())
        n_tiles.append(len(lt))
    out = {"photos": len(recs), "size": size, "tiles_per_photo": float(np.mean(n_tiles))}
    for name, s, t in (("single_view", single, t_single), ("tiles_max", tmax, t_tiles), ("tiles_mean", tmean, t_tiles)):
        m = binary_metrics(y, 1 / (1 + np.exp(-np.array(s))))
        out[name] = {"auroc": round(m["auroc"], 4), "tpr_at_fpr_1pct": round(m["tpr_at_fpr_1pct"], 4),
                     "tpr_at_fpr_5pct": round(m["tpr_at_fpr_5pct"], 4), "ms_per_photo": round(1000 * t / len(recs), 1)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
