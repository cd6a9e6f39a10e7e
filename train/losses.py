"""What every trainer shares (the whole-photo model and the comparator's frozen and end-to-end modes): the epoch's
seeds and the twins ranking loss, one definition each.

    torch.manual_seed(torch_seed(args.seed, epoch)); order = global_batches(n, batch, order_seed(args.seed, epoch))
    loss = bce + twin_rank_loss(z_counterfeit, z_twin)
"""
from __future__ import annotations

import torch
import torch.nn.functional as F

TWIN_MARGIN = 2.0   # logits: a counterfeit should score this much above its own genuine twin


def torch_seed(seed: int, epoch: int) -> int:
    """Seed of torch's generator for an epoch (augmentations, dropout): a resumed run repeats the epoch exactly."""
    return seed * 100_003 + epoch


def order_seed(seed: int, epoch: int) -> int:
    """Seed of an epoch's sample order (apart from torch_seed: the order does not move when augmentations change)."""
    return seed * 7919 + epoch


def twin_rank_loss(z_counterfeit: torch.Tensor, z_twin: torch.Tensor) -> torch.Tensor:
    """Each counterfeit should score TWIN_MARGIN logits above its genuine twin photographed under the same capture:
    their difference is the defect alone, the cleanest lesson in what matters (softplus: a smooth hinge)."""
    return F.softplus(TWIN_MARGIN - (z_counterfeit - z_twin)).mean()
