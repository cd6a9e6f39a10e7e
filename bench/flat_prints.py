"""Experiment: can the network learn the defects on flat prints (no camera), and does that help on photos?

    python bench/flat_prints.py --prints 4000 --epochs 8 --out flat.pt [--difficulty easy]
    genuine train DATA --out runs/ft --finetune flat.pt --backbone mobilenet_v3_small --size 256 --lr 5e-4

Renders SynthPack package faces of products 0-3 (seed 0: the same designs `genuine synth --seed 0` uses)
straight from the artwork, half genuine, half counterfeit, and trains the authenticity head on them. This
separates "the model cannot see the defect" from "the capture nuisance hides it", and the checkpoint it
writes is a starting point for `genuine train --finetune` on real SynthPack photos.
"""
from __future__ import annotations

import argparse
import time

import numpy as np
import torch
import torch.nn.functional as F
from sklearn.metrics import roc_auc_score

from genuine.infer.preprocess import prepare
from genuine.train import checkpoint
from genuine.train.model import GenuineNet
from genuine.train.synthpack.defects import FAMILIES, SEVERITY, counterfeit
from genuine.train.synthpack.design import make_design
from genuine.train.synthpack.render import Item, render


def prints(n: int, seed: int, difficulty: str, products: int, size: int, holdout: tuple = ()):
    rng = np.random.default_rng(seed)
    families = [f for f in FAMILIES if f not in holdout]
    designs = [make_design(0, p) for p in range(products)]
    x, y, fam = [], [], []
    for k in range(n):
        d = designs[int(rng.integers(0, products))]
        item = Item(f"{int(rng.integers(0, 10**8)):08d}", f"{d.lot_prefix}12", (rng.normal(0, 0.5), rng.normal(0, 0.5)),
                    float(rng.normal(1, 0.04)), float(rng.beta(1.2, 4)), int(rng.integers(0, 2**31)))
        fx, f = None, ""
        if k % 2:
            f = families[int(rng.integers(0, len(families)))]
            d, fx, _ = counterfeit(d, f, rng.uniform(*SEVERITY[difficulty]), rng, int(size * 0.95))
        img, _ = render(d, item, int(size * 0.95), fx)
        x.append(prepare(img, size))
        y.append(k % 2)
        fam.append(f)
    return torch.from_numpy(np.stack(x)), torch.tensor(y, dtype=torch.float32), fam


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--prints", type=int, default=4000)
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--difficulty", default="easy", choices=list(SEVERITY))
    ap.add_argument("--products", type=int, default=4)
    ap.add_argument("--size", type=int, default=256)
    ap.add_argument("--holdout-defects", default="", metavar="FAMILY,...",
                    help="families never rendered (for a later `genuine synth --holdout-defects` benchmark)")
    ap.add_argument("--out", required=True)
    args = ap.parse_args()
    t0 = time.time()
    held = tuple(h for h in args.holdout_defects.split(",") if h)
    xt, yt, _ = prints(args.prints, 11, args.difficulty, args.products, args.size, held)
    xv, yv, fv = prints(400, 12, args.difficulty, args.products, args.size, held)
    torch.manual_seed(0)
    net = GenuineNet("mobilenet_v3_small", 1)
    opt = torch.optim.AdamW(net.parameters(), lr=1e-3, weight_decay=0.05)
    steps = args.epochs * ((len(xt) + 31) // 32)
    sched = torch.optim.lr_scheduler.OneCycleLR(opt, 2e-3, total_steps=steps)
    for ep in range(args.epochs):
        net.train()
        perm = torch.randperm(len(xt))
        for s in range(0, len(xt), 32):
            i = perm[s:s + 32]
            loss = F.binary_cross_entropy_with_logits(net(xt[i])["logit"], yt[i])
            opt.zero_grad()
            loss.backward()
            opt.step()
            sched.step()
        net.eval()
        with torch.no_grad():
            lv = torch.cat([net(xv[s:s + 64])["logit"] for s in range(0, len(xv), 64)]).numpy()
        g = lv[yv.numpy() == 0]
        per = {f: round(roc_auc_score(np.r_[np.zeros(len(g)), np.ones(sum(x == f for x in fv))],
                                      np.r_[g, lv[[x == f for x in fv]]]), 2) for f in FAMILIES if f not in held}
        print(f"epoch {ep + 1}: flat-print val AUROC {roc_auc_score(yv.numpy(), lv):.3f} {per} "
              f"({time.time() - t0:.0f} s)", flush=True)
    checkpoint.save(args.out, {"model": net.state_dict(), "meta": {"format": checkpoint.FORMAT,
                                                                    "backbone": "mobilenet_v3_small"}})
    print(f"Results saved to {args.out}; next: genuine train DATA --out runs/ft --finetune {args.out} "
          f"--backbone mobilenet_v3_small --size {args.size} --lr 5e-4")


if __name__ == "__main__":
    main()
