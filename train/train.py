"""`genuine train --arch whole`: the whole-photo classifier (the comparator, the default, is train/train_comparator.py):
train, early-stop on validation AUROC, calibrate, save a self-describing checkpoint.

    genuine train datasets/synthpack --arch whole --out checkpoints/whole --epochs 15
    genuine train datasets/synthpack --arch whole --out checkpoints/whole --resume     # after a crash

Every random draw of epoch e is a function of (seed, e): the photo order, the augmentation
of each photo and torch's own RNG. So --resume from last.pt continues exactly.
"""
from __future__ import annotations

import math
import os
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader
from tqdm import tqdm

from genuine.infer.errors import UsageError
from genuine.infer.preprocess import spec
from genuine.train import checkpoint
from genuine.train.calibrate import fit_temperature, operating_point, sigmoid
from genuine.train.data import PhotoSet, fingerprint, items, select
from genuine.train.distributed import global_batches
from genuine.train.layout import discover
from genuine.train.loop import fit, save_calibrated, versions, with_defaults
from genuine.train.losses import order_seed, torch_seed
from genuine.train.metrics import binary_metrics
from genuine.train.model import GenuineNet, file_sha256, resolve_weights

AUX_WEIGHT = 0.2     # product and embedding heads: helpers, not the goal
EMBED_SCALE = 16.0   # cosine-softmax temperature for the embedding's (product, label) proxies


def losses(net, out, y, prod, pos_weight):
    loss = F.binary_cross_entropy_with_logits(out["logit"], y, pos_weight=pos_weight)
    if "product_logits" in out:
        loss = loss + AUX_WEIGHT * F.cross_entropy(out["product_logits"], prod)
    # Embedding: cosine softmax over (product, label) proxies, so references of one product's
    # genuine units cluster together, apart from its counterfeits and from other products.
    cls = prod.clamp(min=0) * 2 + y.long()
    cos = out["embedding"] @ F.normalize(net.proxies, dim=1).T
    return loss + AUX_WEIGHT * F.cross_entropy(EMBED_SCALE * cos, cls)


def train_one_epoch(net, data, opt, sched, epoch, args, pos_weight, device):
    net.train()
    data.epoch = epoch
    torch.manual_seed(torch_seed(args.seed, epoch))
    batches = [b for b in global_batches(len(data), args.batch, order_seed(args.seed, epoch), drop_last=False)
               if len(b) >= 2]   # batch norm needs two samples
    # Workers decode nothing (the split is memory-mapped) and augment in parallel with the model; each photo's
    # augmentation is seeded by (seed, epoch, index), so the batches are the same with any number of workers.
    loader = DataLoader(data, batch_sampler=batches, num_workers=args.loader_workers,
                        persistent_workers=False, pin_memory=device.type == "cuda")
    bar = tqdm(loader, desc=f"epoch {epoch + 1}/{args.epochs}", unit="batch", leave=False,
               disable=not sys.stderr.isatty())
    total, seen, t0 = 0.0, 0, time.perf_counter()
    for x, y, prod, idx in bar:
        x, y, prod = x.to(device), y.to(device), prod.to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = net(x)
        loss = losses(net, {k: v.float() for k, v in out.items()}, y, prod, pos_weight)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.parameters(), 5.0)
        opt.step()
        sched.step()
        total += loss.item() * len(idx)
        seen += len(idx)
        bar.set_postfix(loss=f"{total / seen:.4f}", img_s=f"{seen / (time.perf_counter() - t0):.1f}")
    return {"train_loss": total / max(seen, 1), "photos_per_s": seen / (time.perf_counter() - t0)}


@torch.no_grad()
def predict(net, data, device, batch: int = 64) -> dict:
    """Raw logits, embeddings and product probabilities for every photo of a (non-augmented) set."""
    net.eval()
    logits, prods, embs = [], [], []
    for s in range(0, len(data), batch):
        x = torch.from_numpy(data.batch(s, s + batch)).to(device)
        with torch.autocast(device.type, dtype=torch.bfloat16, enabled=device.type == "cuda"):
            out = net(x)
        logits.append(out["logit"].float().cpu())
        embs.append(out["embedding"].float().cpu())
        if "product_logits" in out:
            prods.append(out["product_logits"].float().softmax(1).cpu())
    return {"logit": torch.cat(logits).numpy(), "embedding": torch.cat(embs).numpy(),
            "product_prob": torch.cat(prods).numpy() if prods else None}


def start_from(net, ckpt: dict, args) -> None:
    """Fine-tuning: every tensor whose name and shape match the old model; new products get a fresh head."""
    if ckpt["meta"]["backbone"] != args.backbone:
        raise UsageError(f"--finetune: {args.finetune} is a {ckpt['meta']['backbone']}, not {args.backbone}; "
                 f"pass --backbone {ckpt['meta']['backbone']}")
    mine = net.state_dict()
    same = {k: v for k, v in ckpt["model"].items() if k in mine and mine[k].shape == v.shape}
    net.load_state_dict(same, strict=False)
    fresh = sorted({k.split(".")[0] for k in mine if k not in same})
    print(f"fine-tuning from {args.finetune}: {len(same)}/{len(mine)} tensors kept"
          f"{'; new: ' + ', '.join(fresh) if fresh else ''}", file=sys.stderr)


DEFAULTS = {"epochs": 15, "patience": 5}


def _starting_point(args, out_dir: Path, fp: str):
    """(last.pt to resume or None, the weights record: resumed, fine-tuned from, pretrained or none)."""
    resume = checkpoint.load(out_dir / "last.pt") if args.resume else None
    if resume is not None:
        old = resume["meta"]
        if old["data"]["fingerprint"] != fp or old["backbone"] != args.backbone or old["preprocess"]["size"] != args.size:
            raise UsageError(f"--resume: {out_dir / 'last.pt'} was trained on other data, backbone or size")
        return resume, old["weights"]
    if (out_dir / "last.pt").exists():
        raise UsageError(f"{out_dir} already holds a run; pass --resume to continue it or choose another --out")
    if args.finetune:
        src = checkpoint.resolve(args.finetune)
        return None, {"source": "finetune", "path": str(src), "sha256": file_sha256(src)}
    return None, resolve_weights(args.backbone, args.weights)


def _network(args, products: list[str], resume, weights: dict) -> GenuineNet:
    net = GenuineNet(args.backbone, n_products=max(1, len(products)))
    if resume is None and weights["source"] == "finetune":
        start_from(net, checkpoint.load(args.finetune), args)
    elif resume is None and weights["source"] != "none":
        net.load_backbone(weights["path"])
    print(f"backbone {args.backbone}, weights: {weights['source']}"
          f"{' (' + weights['path'] + ')' if 'path' in weights else ' (random init)'}", file=sys.stderr)
    return net


def main(args) -> int:
    args = with_defaults(args, DEFAULTS)
    if int(os.environ.get("WORLD_SIZE", "1")) > 1:   # each process would train its own copy into the same folder
        raise UsageError("torchrun: data-parallel training is for the comparator with --train-backbone; the "
                         "whole-photo classifier trains in one process (its BatchNorm statistics are per batch)")
    device = torch.device(args.device)
    if device.type == "cuda" and not torch.cuda.is_available():
        raise UsageError("--device cuda but no CUDA device is visible")
    out_dir = Path(args.out)
    torch.manual_seed(args.seed)
    ds = discover(args.data)
    train_recs, val_recs = select(ds, "train"), select(ds, "val")
    if not val_recs:
        raise UsageError(f"{ds.root}: the val split is empty; calibration and early stopping need it")
    products = ds.products
    fp = fingerprint(train_recs + val_recs)
    resume, weights = _starting_point(args, out_dir, fp)
    net = _network(args, products, resume, weights)
    train_set = PhotoSet(train_recs, args.size, products, augment=True, seed=args.seed)
    val_set = PhotoSet(val_recs, args.size, products)
    for b in train_set.bad + val_set.bad:
        print(f"skipped unreadable photo: {b}", file=sys.stderr)
    net.to(device)
    n_pos = float(train_set.labels.sum())
    pos_weight = torch.tensor((len(train_set) - n_pos) / max(n_pos, 1.0), device=device)  # balance the classes
    opt = torch.optim.AdamW(net.parameters(), lr=args.lr, weight_decay=0.05)
    steps = math.ceil(len(train_set) / args.batch)
    warm, total = steps, steps * args.epochs

    def lr_at(step):  # linear warm-up for one epoch, then cosine to zero
        return (step + 1) / warm if step < warm else 0.5 * (1 + math.cos(math.pi * (step - warm) / max(1, total - warm)))

    sched = torch.optim.lr_scheduler.LambdaLR(opt, lr_at)
    meta = {"format": checkpoint.FORMAT, "backbone": args.backbone, "preprocess": spec(args.size),
            "labels": ["genuine", "counterfeit"], "score": "probability of counterfeit", "products": products,
            "data": {"root": str(ds.root), "fingerprint": fp, "train_photos": len(train_set),
                     "val_photos": len(val_set), "manifest": ds.manifest is not None},
            "weights": weights, "versions": versions(),
            "args": {k: v for k, v in vars(args).items() if k != "func"}}
    history = fit(net, opt, sched, meta, out_dir, args, resume,
                  run_epoch=lambda e: train_one_epoch(net, train_set, opt, sched, e, args, pos_weight, device),
                  val_metrics=lambda: binary_metrics(val_set.labels.numpy(), sigmoid(predict(net, val_set, device)["logit"])),
                  describe=lambda r: f"acc {r['val_accuracy']:.3f}  {r['photos_per_s']:.1f} photos/s  {r['seconds']:.0f}s")
    return finish(out_dir, val_set, device, args, history)


def finish(out_dir: Path, val_set, device, args, history) -> int:
    """Calibrate the best model on validation data and store everything a deployment needs in best.pt."""
    ckpt = checkpoint.load(out_dir / "best.pt")
    net = checkpoint.build_from(ckpt).to(device)
    pred = predict(net, val_set, device)
    y = val_set.labels.numpy()
    temp = fit_temperature(pred["logit"], y)
    p = sigmoid(pred["logit"] / temp)
    op = operating_point(p, y, max_fpr=args.max_fpr, max_miss=args.max_miss, groups=items(val_set.records))
    val = binary_metrics(y, p)
    val["uncalibrated_ece"] = binary_metrics(y, sigmoid(pred["logit"]))["ece"]
    if pred["product_prob"] is not None:
        val["product_accuracy"] = float((pred["product_prob"].argmax(1) == val_set.products.numpy()).mean())
    return save_calibrated(out_dir, ckpt, temp, "temperature scaling on val", op, val, history, args.data, "")


