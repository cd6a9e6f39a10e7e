"""Probe: PatchCore-style per-product banks of genuine patch features from a trained checkpoint.

    python bench/patch_probe.py runC/best.pt medC [--layers 3,8] [--refs-per-product 40]

For each product, the features of its first --refs-per-product genuine train photos (blocks --layers of the
backbone, 3x3 averaged, resized to the first layer's grid) form a memory bank. A test photo's score is the
distance of each of its patches to the nearest genuine patch of its own product (the product taken from the
manifest, i.e. perfect identification), pooled by max and by the mean of the top 1/16. The output is AUROC
overall and per defect family. This is what anomalib's PatchCore does with ImageNet features. It checks
whether the features of a model trained here carry the defects.
"""
from __future__ import annotations

import argparse

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from genuine.train import checkpoint
from genuine.train.data import PhotoSet, select
from genuine.train.layout import discover


@torch.no_grad()
def patch_features(net, recs, size: int, products: list[str], layers: list[int]) -> torch.Tensor:
    """(N, patches, C) features of each photo, from the given backbone blocks."""
    ps = PhotoSet(recs, size, products)
    out = []
    for i in range(0, len(ps), 32):
        x = torch.stack([ps[j][0] for j in range(i, min(len(ps), i + 32))])
        h = (x.permute(0, 3, 1, 2).float() - net.mean) / net.std
        maps = []
        for k, block in enumerate(net.features):
            h = block(h)
            if k in layers:
                maps.append(h)
        g = maps[0].shape[-1]
        f = torch.cat([F.interpolate(F.avg_pool2d(m, 3, 1, 1), size=(g, g), mode="bilinear") for m in maps], 1)
        out.append(f.permute(0, 2, 3, 1).reshape(f.shape[0], g * g, -1))
    return torch.cat(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("checkpoint")
    ap.add_argument("data")
    ap.add_argument("--layers", default=[3, 8], type=lambda v: [int(x) for x in v.split(",")],
                    help="backbone blocks whose outputs form the patch features (default 3,8)")
    ap.add_argument("--refs-per-product", type=int, default=40)
    args = ap.parse_args()
    layers = args.layers
    ck = checkpoint.load(args.checkpoint)
    net = checkpoint.build_from(ck).eval()
    size, products = ck["meta"]["preprocess"]["size"], ck["meta"]["products"]
    ds = discover(args.data)
    train = [r for r in select(ds, "train") if r.label == "genuine"]
    test = select(ds, "test")
    banks = {}
    for p in sorted({r.product for r in test}):
        refs = sorted((r for r in train if r.product == p), key=lambda r: r.rel)[:args.refs_per_product]
        f = patch_features(net, refs, size, products, layers)
        banks[p] = f.reshape(-1, f.shape[-1])
    s_max, s_top = [], []
    for r, f in zip(test, patch_features(net, test, size, products, layers)):
        d = torch.cdist(f, banks[r.product]).min(1).values
        s_max.append(float(d.max()))
        s_top.append(float(d.topk(max(1, len(d) // 16)).values.mean()))
    y = np.array([r.label == "counterfeit" for r in test])
    fam = np.array([r.extra.get("defect", "") for r in test])
    for name, s in (("max", np.array(s_max)), ("top 1/16", np.array(s_top))):
        per = {str(f): round(roc_auc_score(np.r_[np.zeros((~y).sum()), np.ones((fam == f).sum())],
                                      np.r_[s[~y], s[fam == f]]), 3) for f in sorted(set(fam) - {""})}
        print(f"{name}: AUROC {roc_auc_score(y, s):.4f} {per}", flush=True)


if __name__ == "__main__":
    main()
