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
from dataclasses import dataclass
from pathlib import Path
from typing import Callable

import numpy as np
import torch

from genuine.infer.contract import is_comparator
from genuine.infer.errors import GenuineError
from genuine.infer.templates import load_templates
from genuine.infer.zones import templates_zones
from genuine.train import backbones, checkpoint, comparator_frozen, distributed
from genuine.train.calibrate import fit_temperature, operating_point, sigmoid
from genuine.train.comparator import Comparator
from genuine.train.comparator_frozen import extract, logits_of, twin_targets, views
from genuine.train.data import fingerprint, items, select
from genuine.train.face_data import FaceSet, refined_zones, twin_pairs
from genuine.train.layout import discover
from genuine.train.metrics import binary_metrics
from genuine.train.loop import fit, save_calibrated, versions, with_defaults
from genuine.train.variation_fusion import fit_fusion, variation_scores
from genuine.train.zone_fusion import fit_zones


DEFAULTS = {"epochs": 40, "patience": 8}   # with_defaults: the library's own, for callers other than the CLI


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
    sets = {"train": FaceSet.build(ds.root, recs["train"], templates, size, workers=args.workers)}
    # val also runs the zone checks on each photo's sharp face, the inks' tolerances learnt from the genuine train
    # photos: their weights are fitted on it (train/zone_fusion.py)
    zones = refined_zones(templates_zones(templates), sets["train"])
    sets["val"] = FaceSet.build(ds.root, recs["val"], templates, size, workers=args.workers, zones=zones)
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


@dataclass
class Mode:
    """How the comparator learns: the frozen backbone (heads on cached features) or end to end (--train-backbone)."""
    y: np.ndarray                 # labels of what one epoch sees (every view)
    groups: list                  # optimizer parameter groups
    views: int | None             # frozen: views per train face; end to end: None (fresh every epoch)
    epoch: Callable               # epoch(opt, sched, pos_weight) -> run_epoch(e) -> row
    val_logits: Callable          # val_logits(net) -> logits of the val faces


def _main(args, dist) -> int:
    args = with_defaults(args, DEFAULTS)
    _check_distributed(args, dist)
    out_dir = Path(args.out)
    torch.manual_seed(args.seed)
    ds = discover(args.data)
    resume, start_ckpt, weights = _starting_point(args, out_dir)
    sets, size, fp, skipped = load_sets(args, ds)
    tr, va = sets["train"], sets["val"]
    if resume is not None:
        old = resume["meta"]
        if not is_comparator(old) or old["data"]["fingerprint"] != fp or old["backbone"] != args.backbone \
                or old["face_size"] != list(size):
            raise TrainError(f"--resume: {out_dir / 'last.pt'} was trained on other data, backbone or size")
    net = _network(args, start_ckpt, weights)
    if tr.labels.min(initial=1) == tr.labels.max(initial=0):
        raise TrainError(f"{ds.root}: the aligned train photos hold only one class; the comparator needs both")
    mode = _end_to_end(net, tr, va, args, dist) if args.train_backbone else _frozen(net, tr, va, args)
    y = mode.y
    pos_weight = torch.tensor((len(y) - y.sum()) / max(y.sum(), 1.0))  # balance the classes
    opt = torch.optim.AdamW(mode.groups, lr=args.lr, weight_decay=0.01)
    sched = _warmup_cosine(opt, math.ceil(len(y) / args.batch), args.epochs)
    meta = {"format": checkpoint.FORMAT, "arch": "comparator", "comparator": net.config(),
            "backbone": args.backbone, "face_size": list(size), "labels": ["genuine", "counterfeit"],
            "score": "probability of counterfeit", "products": tr.names, "excluded_products": skipped,
            "data": {"root": str(ds.root), "fingerprint": fp, "train_photos": len(tr), "val_photos": len(va),
                     "train_not_aligned": len(tr.not_aligned), "val_not_aligned": len(va.not_aligned),
                     "views": mode.views, "manifest": ds.manifest is not None},
            "weights": weights, "versions": versions(),
            "args": {kk: v for kk, v in vars(args).items() if kk != "func"}}
    history = fit(net, opt, sched, meta, out_dir, args, resume, mode.epoch(opt, sched, pos_weight),
                  val_metrics=lambda: binary_metrics(va.labels, sigmoid(mode.val_logits(net))),
                  describe=_describe, main=dist.main)
    if not dist.main:
        return 0   # rank 0 calibrates and writes best.pt
    return finish(out_dir, mode.val_logits, va, args, history, tr)


def _describe(row: dict) -> str:
    twins = f"twins {row['rank_loss']:.3f}  " if row.get("rank_loss") is not None else ""
    return f"{twins}{row['pairs_per_s']:.0f} pairs/s  {row['seconds']:.1f}s"


def _check_distributed(args, dist) -> None:
    if not dist.on:
        return
    if not args.train_backbone:
        raise TrainError("torchrun: data-parallel training is for --train-backbone (the backbone learns); the "
                         "default frozen mode trains the heads on cached features in minutes in one process")
    if args.batch < dist.world:
        raise TrainError(f"--batch {args.batch}: the global batch must hold at least one face per process "
                         f"({dist.world})")
    if not dist.main:
        _quiet()


def _starting_point(args, out_dir: Path):
    """(last.pt to resume or None, a comparator checkpoint to fine-tune from or None, the weights record)."""
    resume = checkpoint.load(out_dir / "last.pt") if args.resume else None
    if resume is None and (out_dir / "last.pt").exists():
        raise TrainError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    start_ckpt = checkpoint.load(args.finetune) if args.finetune and resume is None else None
    if resume is not None:
        return resume, None, resume["meta"]["weights"]
    if start_ckpt is not None:
        if not is_comparator(start_ckpt["meta"]) or start_ckpt["meta"]["backbone"] != args.backbone:
            raise TrainError(f"--finetune {args.finetune}: not a {args.backbone} comparator checkpoint")
        src = checkpoint.resolve(args.finetune)
        return None, start_ckpt, {"source": "finetune", "path": str(src), "sha256": backbones.file_sha256(src)}
    # before aligning anything: a missing weights file is the first thing to hear about
    return None, None, backbones.resolve_weights(args.backbone, args.weights)


def _network(args, start_ckpt, weights) -> Comparator:
    net = Comparator(args.backbone, freeze_backbone=True)
    if start_ckpt is not None:
        net.load_state_dict(start_ckpt["model"])   # the backbone and the heads: a new start for new products
    elif weights["source"] != "none":
        backbones.load_weights(net.body, weights["path"])
    print(f"backbone {args.backbone} ({'stride 8+ learning' if args.train_backbone else 'frozen'})"
          f", weights: {weights['source']}"
          f"{' (' + weights['path'] + ')' if 'path' in weights else ' (random init)'}", file=sys.stderr)
    return net


def _warmup_cosine(opt, steps: int, epochs: int):
    """Linear warm-up over the first epoch's steps, cosine decay to zero over the run."""
    total = steps * epochs
    return torch.optim.lr_scheduler.LambdaLR(
        opt, lambda s: min(1.0, (s + 1) / steps) * 0.5 * (1 + math.cos(math.pi * min(1.0, s / max(1, total)))))


def _end_to_end(net: Comparator, tr: FaceSet, va: FaceSet, args, dist) -> Mode:
    """The backbone learns too: fresh views every epoch (train/comparator_e2e.py)."""
    from genuine.train import comparator_e2e   # DataLoader workers and DDP: only when the backbone learns

    device = torch.device(args.device)
    net.to(device)
    params = comparator_e2e.prepare(net)
    step = dist.wrap(comparator_e2e.FaceScore(net))   # DistributedDataParallel under torchrun
    data = comparator_e2e.FaceViews(tr, args.seed)
    pairs = twin_pairs(tr)
    twins = comparator_e2e.TwinViews(tr, pairs, args.seed) if len(pairs) else None
    if twins is not None:
        print(f"{len(pairs)} counterfeit/genuine twin pairs: ranking loss on", file=sys.stderr)

    def epoch(opt, sched, pos_weight):
        return lambda e: comparator_e2e.train_one_epoch(net, data, tr.templates, opt, sched, e, args,
                                                        pos_weight.to(device), twins, dist, step)
    heads = list(net.heads.parameters())
    groups = [{"params": [p for p in params if not any(p is q for q in heads)], "lr": args.lr * 0.1},
              {"params": heads}]
    return Mode(tr.labels, groups, None, epoch, lambda n: comparator_e2e.logits(n, va))


def _frozen(net: Comparator, tr: FaceSet, va: FaceSet, args) -> Mode:
    """Frozen backbone: the features of --views views of every train face once, the heads learn on them."""
    t0 = time.perf_counter()
    k = max(1, args.views)
    pairs = twin_pairs(tr)
    keys = np.arange(len(tr))
    keys[pairs[:, 1]] = pairs[:, 0]     # a twin pair shares one augmentation: only the defect differs
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

    def epoch(opt, sched, pos_weight):
        return lambda e: comparator_frozen.train_one_epoch(net, feats, tfeats, y, product, opt, sched, e, args,
                                                           pos_weight, twins, where)
    return Mode(y, [{"params": list(net.heads.parameters())}], k, epoch,
                lambda n: logits_of(n, vfeats, vt, va.product))


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
    return fusion, s


def weigh_zones(args, va: FaceSet, p: np.ndarray, s: np.ndarray, fusion: dict, op: dict) -> dict:
    """The zone checks' weights on top of the val score each photo gets at inspection (fused where it can be)."""
    from genuine.infer.variation import fused_p

    suspect = np.full(len(p), float(op["threshold_suspect"]))
    if fusion.get("used"):
        has = ~np.isnan(s)
        p = np.where(has, fused_p(p, np.nan_to_num(s), fusion), p)
        suspect[has] = float(fusion["thresholds"]["threshold_suspect"])
    fit = fit_zones(p, va.zones, va.labels, suspect, args.max_fpr)
    v = fit.get("val") or {}
    if fit["used"]:
        print(f"zone checks weighed (val): AUROC {v['auroc_before']:.4f} -> {v['auroc_after']:.4f}, weights "
              f"{fit['weights']}, failed on val {v['failed_on_val']}", file=sys.stderr)
    else:
        print(f"zone checks not weighed: {fit['why']}", file=sys.stderr)
    return fit


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
    ckpt["meta"]["fusion"], s = fuse(args, tr, va, p, op)
    ckpt["meta"]["zones"] = weigh_zones(args, va, p, s, ckpt["meta"]["fusion"], op)
    return save_calibrated(out_dir, ckpt, temp, "temperature scaling on aligned val faces", op, val, history,
                           args.data, f", {len(va)} aligned photos")
