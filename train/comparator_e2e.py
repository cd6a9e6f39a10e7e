"""End-to-end comparator training (`genuine train --train-backbone`): the backbone learns too, from fresh views.

The default (train/train_comparator.py) freezes the pretrained backbone and trains the heads on features computed
once: minutes on a CPU. Here the backbone's later stages (stride 8 and deeper) learn as well, on a new jittered,
re-exposed view of every face each epoch fed by a DataLoader with workers; the stem and the stride-2/4 stages stay
frozen (edges and strokes need no relearning, and their activations are the largest to back-propagate through),
and BatchNorm keeps its ImageNet statistics (batches of a few products are no population to estimate them from).
Templates pass through the current backbone without gradient: eight templates per step cost little, and the face
branch carries the shared weights' gradient. Roughly 10x the CPU time of the frozen mode per epoch. With SynthPack
twins (`--twins`), each step also takes a few counterfeit/genuine twin pairs under one shared augmentation and asks
the counterfeit to score above its twin, as the frozen mode does (the lever that made the comparator learn).
"""
from __future__ import annotations

import time

import numpy as np
import torch
import torch.nn.functional as F
from torch.utils.data import DataLoader, Dataset, default_collate

from genuine.train.comparator import Comparator
from genuine.train.losses import order_seed, torch_seed, twin_rank_loss
from genuine.train.distributed import Dist, global_batches
from genuine.train.face_data import FaceSet, augment

FROZEN_STRIDE = 4    # stages up to this stride stay as pretrained


class FaceViews(Dataset):
    """Face i of epoch e: augmented with the generator seeded by (seed, e, i), so --resume replays it exactly."""

    def __init__(self, fs: FaceSet, seed: int):
        self.fs, self.seed, self.epoch = fs, seed, 0

    def __len__(self) -> int:
        return len(self.fs)

    def __getitem__(self, i: int):
        face = augment(self.fs.faces[i], np.random.default_rng([self.seed, self.epoch, i]))
        return torch.from_numpy(face), int(self.fs.labels[i]), int(self.fs.product[i])


class TwinViews(Dataset):
    """Twin pair k of epoch e: the counterfeit and its genuine twin, both augmented by the same draws (one generator
    seeded by (seed, e, k) for each), so their difference stays the defect alone."""

    def __init__(self, fs: FaceSet, pairs: np.ndarray, seed: int):
        self.fs, self.pairs, self.seed, self.epoch = fs, pairs, seed, 0

    def __len__(self) -> int:
        return len(self.pairs)

    def __getitem__(self, k: int):
        c, g = (int(v) for v in self.pairs[k])
        key = [self.seed, self.epoch, 1_000_003, k]   # apart from FaceViews' keys
        return (torch.from_numpy(augment(self.fs.faces[c], np.random.default_rng(key))),
                torch.from_numpy(augment(self.fs.faces[g], np.random.default_rng(key))), int(self.fs.product[c]))


def prepare(net: Comparator) -> list[torch.nn.Parameter]:
    """Unfreeze the stages deeper than FROZEN_STRIDE, up to the deepest level the heads read (the stages past it are
    never run: parameters that never get a gradient would stall DistributedDataParallel); return the parameters that
    learn (heads included)."""
    net.freeze_backbone = False
    strides, _ = net.body.stage_shapes()
    for stage, s in zip(net.body, strides):
        stage.requires_grad_(FROZEN_STRIDE < s <= max(net.strides))
    return [p for p in net.parameters() if p.requires_grad]


def set_mode(net: Comparator, training: bool) -> None:
    net.train(training)
    net.body.eval()   # BatchNorm statistics stay ImageNet's (see the module docstring)


def _collate(items: list):
    return default_collate(items) if items else None   # a process's empty share of a step's twin pairs


def loader(views, batch: int, workers: int, epoch: int, salt: int = 0, dist: Dist | None = None):
    """This process's part of each of the epoch's global batches (all of it in a single process), and the global
    batch sizes: the order is the seeded single-process one whatever the number of processes."""
    dist = dist or Dist()
    views.epoch = epoch
    batches = global_batches(len(views), batch, order_seed(views.seed, epoch) + salt,
                             drop_last=len(views) > batch)   # BatchNorm-free heads, but a batch of one is noise
    return (DataLoader(views, batch_sampler=[dist.shard(b) for b in batches], num_workers=workers,
                       collate_fn=_collate), [len(b) for b in batches])


class FaceScore(torch.nn.Module):
    """One step's forward for DistributedDataParallel: the faces through the shared backbone, scored against the
    templates' features (computed without gradient outside it)."""

    def __init__(self, net: Comparator):
        super().__init__()
        self.net = net

    def forward(self, face, template_features):
        return self.net.score(self.net.features(face), template_features)


def train_one_epoch(net: Comparator, views: FaceViews, templates: np.ndarray, opt, sched, epoch: int, args,
                    pos_weight, twins: TwinViews | None = None, dist: Dist | None = None, step=None) -> dict:
    """One epoch; with torchrun (dist) each process scores its part of every global batch and scales its loss by
    that share, so the averaged gradient is the single-process gradient of the whole batch."""
    dist = dist or Dist()
    step = step or FaceScore(net)
    set_mode(net, True)
    torch.manual_seed(torch_seed(args.seed, epoch))
    total, seen, rank, ranked, t0 = 0.0, 0, 0.0, 0, time.perf_counter()
    device = next(net.parameters()).device
    tmpl = torch.from_numpy(templates).to(device)
    faces, sizes = loader(views, args.batch, args.loader_workers, epoch, dist=dist)
    pairs, pair_sizes = [], []
    if twins is not None and len(twins):   # spread the pairs over the epoch's steps
        per_step = max(1, -(-len(twins) // max(1, len(sizes))))
        pairs, pair_sizes = loader(twins, per_step, args.loader_workers, epoch, salt=1, dist=dist)
    pair_iter = iter(pairs)
    for k, (face, y, product) in enumerate(faces):
        pair = next(pair_iter, None) if k < len(pair_sizes) else None
        n, n_all = len(y), sizes[k]
        face, y, product = face.to(device), y.to(device), product.to(device)
        if pair is not None:   # counterfeits, then their twins, in the same forward pass
            pair = [v.to(device) for v in pair]
            face, product = torch.cat([face, pair[0], pair[1]]), torch.cat([product, pair[2], pair[2]])
        with torch.no_grad():
            tf = net.features(tmpl)
        out = step(face, [t[product] for t in tf])
        loss = F.binary_cross_entropy_with_logits(out["logit"][:n], y.float(), pos_weight=pos_weight) * (n / n_all)
        m = (len(face) - n) // 2
        if m:
            z = out["logit"][n:]
            r = twin_rank_loss(z[:m], z[m:])
            loss = loss + r * (m / pair_sizes[k])
            rank, ranked = rank + r.item() * m, ranked + m
        loss = loss * dist.world    # DistributedDataParallel averages the processes' gradients
        opt.zero_grad(set_to_none=True)
        loss.backward()
        torch.nn.utils.clip_grad_norm_([p for p in net.parameters() if p.requires_grad], 5.0)
        opt.step()
        sched.step()
        total += loss.item() / dist.world * n_all
        seen += n_all
    return {"train_loss": total / max(seen, 1), "rank_loss": rank / ranked if ranked else None,
            "pairs_per_s": seen / (time.perf_counter() - t0)}


@torch.no_grad()
def logits(net: Comparator, fs: FaceSet, batch: int = 32) -> np.ndarray:
    set_mode(net, False)
    device = next(net.parameters()).device
    tf = net.features(torch.from_numpy(fs.templates).to(device))
    out = []
    for s in range(0, len(fs), batch):
        p = torch.from_numpy(fs.product[s:s + batch]).to(device)
        faces = torch.from_numpy(fs.faces[s:s + batch]).to(device)
        out.append(net.score(net.features(faces), [t[p] for t in tf])["logit"].float().cpu())
    return torch.cat(out).numpy() if out else np.zeros(0)
