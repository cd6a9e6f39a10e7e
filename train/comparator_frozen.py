"""Frozen-backbone comparator training (the default of `genuine train`): features once, heads trained on them.

    feats = extract(net, views(faces, 3, seed))           # per level, float16, one row per view of every face
    train_one_epoch(net, feats, tfeats, y, product, opt, sched, epoch, args, pos_weight, twins, where)

The pretrained backbone is frozen, so its features of every view of every train face and of every template are
computed once; an epoch then costs only the heads (seconds, not the ~40x more of a backbone step). Views are
drawn once from (seed, photo, view): --resume replays them exactly. With SynthPack twins, a ranking loss and
heatmap targets (twin_targets) teach what a defect is: a counterfeit against its genuine twin under one capture.
"""
from __future__ import annotations

import math
import time

import numpy as np
import torch
import torch.nn.functional as F

from genuine.infer.progress import Progress
from genuine.train.comparator import Comparator
from genuine.train.face_data import augment
from genuine.train.losses import order_seed, torch_seed, twin_rank_loss


@torch.no_grad()
def extract(net: Comparator, images: np.ndarray, batch: int = 32, label: str | None = None) -> list[torch.Tensor]:
    """The frozen features of uint8 (N, H, W, 3) images, per level, as float16 (memory: ~340 KB a face); with a
    label, a progress line on stderr (a training set's views take minutes on a CPU)."""
    net.eval()
    out: list[list[torch.Tensor]] = []
    bar = Progress(len(images), label is not None, label or "", "images")
    for s in range(0, len(images), batch):
        maps = net.features(torch.from_numpy(np.ascontiguousarray(images[s:s + batch])))
        out.append([m.half() for m in maps])
        bar.step(len(maps[0]))
    bar.close()
    return [torch.cat([o[k] for o in out]) for k in range(len(out[0]))]


def views(faces: np.ndarray, k: int, seed: int, keys: np.ndarray | None = None) -> np.ndarray:
    """k views of every face: view 0 as rectified, the others augmented; (k * N, H, W, 3), view-major.
    keys[i] seeds face i's augmentation (default i): a twin pair shares one key, so one jitter and exposure."""
    keys = np.arange(len(faces)) if keys is None else keys
    out = [faces]
    for v in range(1, k):
        out.append(np.stack([augment(f, np.random.default_rng([seed, int(keys[i]), v])) for i, f in enumerate(faces)]))
    return np.concatenate(out)


def logits_of(net: Comparator, feats, tfeats, product: np.ndarray, batch: int = 64) -> np.ndarray:
    net.eval()
    res = []
    with torch.no_grad():
        for s in range(0, len(product), batch):
            idx = torch.arange(s, min(s + batch, len(product)))
            p = torch.from_numpy(product[idx.numpy()])
            res.append(net.score([f[idx].float() for f in feats], [t[p].float() for t in tfeats])["logit"])
    return torch.cat(res).numpy() if res else np.zeros(0)


WHERE_WEIGHT = 0.5  # the heatmap loss from twins, against the image-level losses


@torch.no_grad()
def twin_targets(feats: list[torch.Tensor], twins: np.ndarray) -> torch.Tensor:
    """Where each counterfeit differs from its twin, (len(twins), h, w) in {0, 1} at the heatmap's grid: per level
    the squared feature difference (one capture, one item: only the defect differs) relative to that level's mean
    difference, the largest over levels, kept where at least half the pair's peak."""
    out = []
    for s in range(0, len(twins), 128):   # in chunks: the stride-4 maps of a thousand pairs are large
        c, g = torch.from_numpy(twins[s:s + 128, 0]), torch.from_numpy(twins[s:s + 128, 1])
        d = None
        for f in feats:
            e = (f[c].float() - f[g].float()).pow(2).mean(1, keepdim=True)
            # scaled by the level's typical difference over the pairs: a level where twins barely differ stays low
            e = F.interpolate(e / e.mean().clamp_min(1e-8), size=feats[0].shape[-2:], mode="bilinear",
                              align_corners=False)
            d = e if d is None else torch.maximum(d, e)
        d = d[:, 0] / d.flatten(1).amax(1).clamp_min(1e-8)[:, None, None]
        out.append((d >= 0.5).half())
    return torch.cat(out)


def train_one_epoch(net, feats, tfeats, y, product, opt, sched, epoch, args, pos_weight, twins=None,
                    where=None) -> dict:
    """Class-balanced BCE over all views; with twins (pairs of view indices), also a ranking loss that asks each
    counterfeit to score above its genuine twin photographed under the same capture: their difference is the
    defect alone, the cleanest lesson in what matters. With `where` (twin_targets), the heatmap learns it too:
    high where the counterfeit differs from its twin, low elsewhere and everywhere on the twin."""
    net.train()
    torch.manual_seed(torch_seed(args.seed, epoch))
    g = torch.Generator().manual_seed(order_seed(args.seed, epoch))
    order = torch.randperm(len(y), generator=g)
    pair_order = torch.randperm(len(twins), generator=g) if twins is not None and len(twins) else None
    steps = math.ceil(len(order) / args.batch)
    per_step = math.ceil(len(twins) / steps) if pair_order is not None else 0
    total, seen, rank, ranked, t0 = 0.0, 0, 0.0, 0, time.perf_counter()
    for k, s in enumerate(range(0, len(order), args.batch)):
        idx = order[s:s + args.batch]
        n = len(idx)
        if per_step:
            tp = torch.from_numpy(twins[pair_order[k * per_step:(k + 1) * per_step].numpy()])
            idx = torch.cat([idx, tp[:, 0], tp[:, 1]])
        p = torch.from_numpy(product[idx.numpy()])
        out = net.score([f[idx].float() for f in feats], [t[p].float() for t in tfeats])
        loss = F.binary_cross_entropy_with_logits(out["logit"][:n], torch.from_numpy(y[idx[:n].numpy()]).float(),
                                                  pos_weight=pos_weight)
        m = (len(idx) - n) // 2
        if m:
            z = out["logit"][n:]
            r = twin_rank_loss(z[:m], z[m:])
            loss = loss + r
            rank, ranked = rank + r.item() * m, ranked + m
            if where is not None:
                t = where[pair_order[k * per_step:(k + 1) * per_step]].float()
                heat = out["heatmap"][n:]
                loss = loss + WHERE_WEIGHT * (F.binary_cross_entropy_with_logits(heat[:m], t)
                                              + F.binary_cross_entropy_with_logits(heat[m:], torch.zeros_like(t)))
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_(net.heads.parameters(), 5.0)
        opt.step()
        sched.step()
        total += loss.item() * n
        seen += n
    return {"train_loss": total / max(seen, 1), "rank_loss": rank / ranked if ranked else None,
            "pairs_per_s": seen / (time.perf_counter() - t0)}
