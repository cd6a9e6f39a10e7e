"""`genuine train` (the default, --arch comparator): teach the comparator what differs from a template in a way
genuine units do not. Early-stop on val AUROC, calibrate, save a self-describing checkpoint.

    genuine train datasets/synthpack --out checkpoints/synthpack
    genuine train datasets/synthpack --out checkpoints/synthpack --resume            # after a crash
    genuine train datasets/synthpack --out runs/unseen --exclude-products 06-vetoel,07-sari

Every photo is rectified onto its product's template once (train/faces.py, cached). The pretrained backbone is
frozen: its features of each train face (one clean view and --views - 1 jittered, re-exposed ones) and of each
template are computed once, and only the comparison heads train on them, many epochs in seconds each. That is
what makes a CPU run take minutes: a full backbone step costs ~40x more per pair, and the ImageNet features
already describe print, edges and shapes; what must be learnt is which differences genuine units also show.
Every random draw is a function of (seed, epoch) or (seed, photo, view), so --resume continues exactly.
"""
from __future__ import annotations

import math
import os
import sys
import time
import traceback
from pathlib import Path

import numpy as np
import torch

from genuine.infer.errors import GenuineError
from genuine.infer.templates import load_templates
from genuine.train import backbones, checkpoint, comparator_frozen, distributed
from genuine.train.calibrate import fit_temperature, operating_point, sigmoid
from genuine.train.comparator import Comparator
from genuine.train.comparator_frozen import extract, logits_of, twin_targets, views
from genuine.train.data import fingerprint, items, select
from genuine.train.face_data import FaceSet, twin_pairs
from genuine.train.layout import discover
from genuine.train.metrics import binary_metrics
from genuine.train.train import fit, save_calibrated, versions
from genuine.train.variation_fusion import fit_fusion, variation_scores


class TrainError(GenuineError, ValueError):
    """Arguments or data that cannot train a comparator; the message says what to change."""


def parse_size(text: str) -> tuple[int, int]:
    try:
        w, h = (int(v) for v in str(text).lower().split("x"))
    except ValueError:
        raise TrainError(f"--face-size {text!r}: expected WIDTHxHEIGHT, e.g. 320x208") from None
    if w % 16 or h % 16 or min(w, h) < 32:
        raise TrainError(f"--face-size {text!r}: both sides must be multiples of 16, at least 32")
    return w, h


def load_sets(args, ds):
    """Train and val FaceSets (only the products trained on) and the fingerprint of what they came from."""
    templates = load_templates(ds.root)
    skip = {p for p in (args.exclude_products or "").split(",") if p}
    unknown = skip - set(ds.products)
    if unknown:
        raise TrainError(f"--exclude-products: {', '.join(sorted(unknown))} not in {ds.root}")
    recs = {s: [r for r in select(ds, s) if r.product not in skip] for s in ("train", "val")}
    if not recs["val"]:
        raise TrainError(f"{ds.root}: the val split is empty; calibration and early stopping need it")
    size = parse_size(args.face_size)
    t0 = time.perf_counter()
    sets = {s: FaceSet.build(ds.root, r, templates, size, workers=args.workers) for s, r in recs.items()}
    for s, fs in sets.items():
        print(f"{s}: {len(fs)} photos aligned to their templates, {len(fs.not_aligned)} not "
              f"({time.perf_counter() - t0:.0f}s)", file=sys.stderr)
        for r, why in fs.not_aligned[:5]:
            print(f"  not aligned ({why}): {r.rel}", file=sys.stderr)
    return sets, size, fingerprint(recs["train"] + recs["val"]), sorted(skip)


def main(args) -> int:
    dist = distributed.init(args.device)   # torchrun: one process per device; else a single process
    try:
        return _main(args, dist)
    finally:
        distributed.close(dist)


def _quiet() -> None:
    """Processes other than rank 0 say nothing (rank 0 says it all), except a traceback if they fail."""
    sys.stdout = sys.stderr = open(os.devnull, "w")
    sys.excepthook = lambda *exc: traceback.print_exception(*exc, file=sys.__stderr__)


def _main(args, dist) -> int:
    if dist.on:
        if not args.train_backbone:
            raise TrainError("torchrun: data-parallel training is for --train-backbone (the backbone learns); the "
                             "default frozen mode trains the heads on cached features in minutes in one process")
        if args.batch < dist.world:
            raise TrainError(f"--batch {args.batch}: the global batch must hold at least one face per process "
                             f"({dist.world})")
        if not dist.main:
            _quiet()
    out_dir = Path(args.out)
    torch.manual_seed(args.seed)
    ds = discover(args.data)
    resume = checkpoint.load(out_dir / "last.pt") if args.resume else None
    if resume is None and (out_dir / "last.pt").exists():
        raise TrainError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    start_ckpt = checkpoint.load(args.finetune) if args.finetune and resume is None else None
    if resume is not None:
        weights = resume["meta"]["weights"]
    elif start_ckpt is not None:
        if start_ckpt["meta"].get("arch") != "comparator" or start_ckpt["meta"]["backbone"] != args.backbone:
            raise TrainError(f"--finetune {args.finetune}: not a {args.backbone} comparator checkpoint")
        src = checkpoint.resolve(args.finetune)
        weights = {"source": "finetune", "path": str(src), "sha256": backbones.file_sha256(src)}
    else:  # before aligning anything: a missing weights file is the first thing to hear about
        weights = backbones.resolve_weights(args.backbone, args.weights)
    sets, size, fp, skipped = load_sets(args, ds)
    tr, va = sets["train"], sets["val"]
    if resume is not None:
        old = resume["meta"]
        if old.get("arch") != "comparator" or old["data"]["fingerprint"] != fp or old["backbone"] != args.backbone \
                or old["face_size"] != list(size):
            raise TrainError(f"--resume: {out_dir / 'last.pt'} was trained on other data, backbone or size")
    net = Comparator(args.backbone, freeze_backbone=True)
    if start_ckpt is not None:
        net.load_state_dict(start_ckpt["model"])   # the backbone and the heads: a new start for new products
    elif weights["source"] != "none":
        backbones.load_weights(net.body, weights["path"])
    print(f"backbone {args.backbone} ({'stride 8+ learning' if args.train_backbone else 'frozen'})"
          f", weights: {weights['source']}"
          f"{' (' + weights['path'] + ')' if 'path' in weights else ' (random init)'}", file=sys.stderr)
    if tr.labels.min(initial=1) == tr.labels.max(initial=0):
        raise TrainError(f"{ds.root}: the aligned train photos hold only one class; the comparator needs both")

    t0 = time.perf_counter()
    e2e = bool(args.train_backbone)
    if e2e:   # the backbone learns too: fresh views every epoch (train/comparator_e2e.py)
        from genuine.train import comparator_e2e

        device = torch.device(args.device)
        net.to(device)
        params = comparator_e2e.prepare(net)
        step = dist.wrap(comparator_e2e.FaceScore(net))   # DistributedDataParallel under torchrun
        data = comparator_e2e.FaceViews(tr, args.seed)
        pairs = twin_pairs(tr)
        twins = comparator_e2e.TwinViews(tr, pairs, args.seed) if len(pairs) else None
        if twins is not None:
            print(f"{len(pairs)} counterfeit/genuine twin pairs: ranking loss on", file=sys.stderr)
        y = tr.labels
        run_epoch = lambda e: comparator_e2e.train_one_epoch(net, data, tr.templates, opt, sched, e, args,  # noqa
                                                             pos_weight.to(device), twins, dist, step)
        val_logits = lambda n: comparator_e2e.logits(n, va)  # noqa: E731
        groups = [{"params": [p for p in params if not any(p is q for q in net.heads.parameters())],
                   "lr": args.lr * 0.1}, {"params": list(net.heads.parameters())}]
    else:     # frozen backbone: features once, heads on them
        k = max(1, args.views)
        pairs = twin_pairs(tr)
        keys = np.arange(len(tr))
        keys[pairs[:, 1]] = pairs[:, 0]
        feats = extract(net, views(tr.faces, k, args.seed, keys), label="features of train views")
        y, product = np.tile(tr.labels, k), np.tile(tr.product, k)
        twins = np.concatenate([pairs + v * len(tr) for v in range(k)]) if len(pairs) else None
        where = twin_targets(feats, twins) if twins is not None and args.where else None
        if twins is not None:
            print(f"{len(pairs)} counterfeit/genuine twin pairs: ranking loss on"
                  f"{', heatmap targets from their differences' if where is not None else ''}", file=sys.stderr)
        tfeats = extract(net, tr.templates)
        vfeats, vt = extract(net, va.faces), extract(net, va.templates)
        print(f"features of {len(y)} train views, {len(va)} val faces and {len(tr.names)} templates in "
              f"{time.perf_counter() - t0:.0f}s", file=sys.stderr)
        run_epoch = lambda e: comparator_frozen.train_one_epoch(  # noqa: E731
            net, feats, tfeats, y, product, opt, sched, e, args, pos_weight, twins, where)
        val_logits = lambda n: logits_of(n, vfeats, vt, va.product)  # noqa: E731
        groups = [{"params": list(net.heads.parameters())}]

    pos_weight = torch.tensor((len(y) - y.sum()) / max(y.sum(), 1.0))  # balance the classes
    opt = torch.optim.AdamW(groups, lr=args.lr, weight_decay=0.01)
    steps = math.ceil(len(y) / args.batch)
    total = steps * args.epochs
    sched = torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / steps) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total)))))
    meta = {"format": checkpoint.FORMAT, "arch": "comparator", "comparator": net.config(),
            "backbone": args.backbone, "face_size": list(size), "labels": ["genuine", "counterfeit"],
            "score": "probability of counterfeit", "products": tr.names, "excluded_products": skipped,
            "data": {"root": str(ds.root), "fingerprint": fp, "train_photos": len(tr), "val_photos": len(va),
                     "train_not_aligned": len(tr.not_aligned), "val_not_aligned": len(va.not_aligned),
                     "views": None if e2e else k, "manifest": ds.manifest is not None},
            "weights": weights, "versions": versions(),
            "args": {kk: v for kk, v in vars(args).items() if kk != "func"}}
    history = fit(net, opt, sched, meta, out_dir, args, resume, run_epoch,
                  val_metrics=lambda: binary_metrics(va.labels, sigmoid(val_logits(net))),
                  describe=lambda r: (f"twins {r['rank_loss']:.3f}  " if r.get("rank_loss") is not None else "")
                  + f"{r['pairs_per_s']:.0f} pairs/s  {r['seconds']:.1f}s", main=dist.main)
    if not dist.main:
        return 0   # rank 0 calibrates and writes best.pt
    return finish(out_dir, val_logits, va, args, history, tr)


def fuse(args, tr: FaceSet, va: FaceSet, p: np.ndarray, op: dict) -> dict:
    """The fusion with each product's genuine variation (train/variation_fusion.py), fitted on val."""
    t0 = time.perf_counter()
    s = variation_scores(tr, va, args.workers)
    fusion = fit_fusion(p, s, va.labels, args.max_fpr, args.max_miss, groups=items(va.records))
    if fusion["used"]:
        v, t = fusion["val"], fusion["thresholds"]
        print(f"fused with genuine variation (val, {v['photos']} photos, {time.perf_counter() - t0:.0f}s): AUROC "
              f"comparator {v['comparator_auroc']:.4f}, variation {v['variation_auroc']:.4f} -> fused {v['auroc']:.4f}"
              f"  coverage {op['coverage']:.3f} -> {t['coverage']:.3f}", file=sys.stderr)
    else:
        print(f"no fusion with genuine variation: {fusion['why']}", file=sys.stderr)
    return fusion


def finish(out_dir: Path, val_logits, va: FaceSet, args, history, tr: FaceSet) -> int:
    """Calibrate the best model on the val faces and store everything a deployment needs in best.pt."""
    ckpt = checkpoint.load(out_dir / "best.pt")
    net = checkpoint.build_from(ckpt)
    z = val_logits(net)
    temp = fit_temperature(z, va.labels)
    p = sigmoid(z / temp)
    op = operating_point(p, va.labels, max_fpr=args.max_fpr, max_miss=args.max_miss, groups=items(va.records))
    val = binary_metrics(va.labels, p)
    val["uncalibrated_ece"] = binary_metrics(va.labels, sigmoid(z))["ece"]
    val["not_aligned"] = len(va.not_aligned)
    ckpt["meta"]["fusion"] = fuse(args, tr, va, p, op)
    return save_calibrated(out_dir, ckpt, temp, "temperature scaling on aligned val faces", op, val, history,
                           args.data, f", {len(va)} aligned photos")
