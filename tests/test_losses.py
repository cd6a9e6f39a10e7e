"""The twins ranking loss is a lever of both comparator trainers (train/losses.py): switched off, a counterfeit's
margin over its genuine twin grows no faster than the labels alone make it. Tiny heads on random features: seconds."""
from __future__ import annotations

import copy
import math
from types import SimpleNamespace

import numpy as np
import torch

from genuine.train.comparator import Comparator
from genuine.train.comparator_frozen import extract, train_one_epoch
from genuine.train.losses import TWIN_MARGIN, twin_rank_loss


def test_the_ranking_loss_is_a_hinge_at_the_margin():
    z = torch.tensor([10.0, 0.0])
    assert twin_rank_loss(z[:1], z[1:]) < 0.01 < twin_rank_loss(z[1:], z[:1])          # above the margin: ~0
    assert math.isclose(float(twin_rank_loss(torch.zeros(1), torch.zeros(1))), math.log1p(math.exp(TWIN_MARGIN)),
                        rel_tol=1e-6)


def _margin_after(net, feats, tfeats, y, product, twins, epochs=6) -> tuple[float, list]:
    net = copy.deepcopy(net)
    args = SimpleNamespace(seed=0, batch=8)
    opt = torch.optim.AdamW(net.heads.parameters(), lr=3e-2)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    rows = [train_one_epoch(net, feats, tfeats, y, product, opt, sched, e, args, torch.tensor(1.0), twins)
            for e in range(epochs)]
    net.eval()
    with torch.no_grad():
        z = net.score([f.float() for f in feats], [t[torch.from_numpy(product)].float() for t in tfeats])["logit"]
    pairs = torch.from_numpy(twins if twins is not None else PAIRS)
    return float((z[pairs[:, 0]] - z[pairs[:, 1]]).mean()), rows


PAIRS = np.array([[i, i + 16] for i in range(16)])   # counterfeit i, its genuine twin i + 16


def test_frozen_mode_twins_widen_the_counterfeit_margin_over_its_twin():
    torch.manual_seed(0)
    net = Comparator("mobilenet_v3_small", strides=(8, 16), hidden=8)   # random weights: no download, no wheel
    rng = np.random.default_rng(0)
    faces = rng.integers(0, 256, (32, 64, 96, 3), dtype=np.uint8)
    faces[16:] = faces[:16] // 2 + 64                 # twins: the same face but for a change everywhere
    feats, tfeats = extract(net, faces), extract(net, faces[:1])
    y, product = np.r_[np.ones(16), np.zeros(16)].astype(np.float32), np.zeros(32, int)
    with_twins, rows = _margin_after(net, feats, tfeats, y, product, PAIRS)
    without, rows_off = _margin_after(net, feats, tfeats, y, product, None)
    assert all(r["rank_loss"] is not None and r["rank_loss"] > 0 for r in rows)
    assert all(r["rank_loss"] is None for r in rows_off)
    assert with_twins > without + 0.1, (with_twins, without)
