"""Data-parallel training with torchrun: every process takes its slice of each global batch.

    torchrun --nproc_per_node 2 -m genuine train DATA --out checkpoints/ddp --train-backbone     # gloo on CPUs
    torchrun --nproc_per_node 8 -m genuine train DATA --out checkpoints/ddp --train-backbone --device cuda   # NCCL

The global batch (--batch) and its order are exactly the single-process ones: the same seeded permutation is cut
into the same batches, and rank r takes the r-th contiguous part of each. Each process scales its loss by its share
of the batch, so DistributedDataParallel's gradient average is the single-process gradient of the whole batch;
augmentation is seeded per photo and epoch, so it does not depend on which process draws it. Only rank 0 writes
checkpoints, logs and the calibration; `--resume` reads the same last.pt in every process.
"""
from __future__ import annotations

import os
import warnings
from dataclasses import dataclass

import numpy as np
import torch


@dataclass
class Dist:
    rank: int = 0
    world: int = 1
    local_rank: int = 0

    @property
    def main(self) -> bool:
        return self.rank == 0

    @property
    def on(self) -> bool:
        return self.world > 1

    def shard(self, batch: list[int]) -> list[int]:
        """This process's contiguous part of a global batch (the first parts one longer when it does not divide)."""
        return [int(i) for i in np.array_split(np.asarray(batch, int), self.world)[self.rank]]

    def wrap(self, module: torch.nn.Module) -> torch.nn.Module:
        if not self.on:
            return module
        from torch.nn.parallel import DistributedDataParallel as DDP

        ids = [self.local_rank] if torch.cuda.is_available() and next(module.parameters()).is_cuda else None
        # BatchNorm statistics stay frozen (comparator_e2e.set_mode): no buffers to broadcast every step
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", FutureWarning)   # broadcast_buffers' renaming, not its meaning
            return DDP(module, device_ids=ids, broadcast_buffers=False)

    def barrier(self) -> None:
        if self.on:
            torch.distributed.barrier()


def init(device: str) -> Dist:
    """The process group torchrun describes (RANK, WORLD_SIZE, LOCAL_RANK), or a single process."""
    world = int(os.environ.get("WORLD_SIZE", "1"))
    if world <= 1:
        return Dist()
    import torch.distributed as td

    if not td.is_initialized():
        td.init_process_group("nccl" if device == "cuda" else "gloo")
    d = Dist(td.get_rank(), td.get_world_size(), int(os.environ.get("LOCAL_RANK", "0")))
    if device == "cuda":
        torch.cuda.set_device(d.local_rank)
    return d


def close(d: Dist) -> None:
    if d.on and torch.distributed.is_initialized():
        torch.distributed.destroy_process_group()


def global_batches(n: int, batch: int, seed: int, drop_last: bool) -> list[list[int]]:
    """The epoch's batches of indices as one process would draw them (a seeded permutation, cut in order)."""
    order = torch.randperm(n, generator=torch.Generator().manual_seed(seed)).tolist()
    cuts = [order[s:s + batch] for s in range(0, n, batch)]
    return [c for c in cuts if len(c) == batch] if drop_last else cuts
