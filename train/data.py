"""Training data: records of a dataset split -> uint8 tensors, decoded once through infer/.

    ds = discover("datasets/synthpack")
    train_set = PhotoSet(select(ds, "train"), size=320, products=ds.products, augment=True)
    x, y, product, index = train_set[0]
"""
from __future__ import annotations

import hashlib
import os
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import torch
from torch.utils.data import Dataset

from genuine.infer.errors import UsageError
from genuine.infer.model_input import photo_input
from genuine.infer.photo import PhotoError
from genuine.infer.preprocess import PAD_VALUE
from genuine.train.layout import Dataset as Layout
from genuine.train.layout import Record


def select(ds: Layout, split: str) -> list[Record]:
    if not any(r.split for r in ds.records):
        raise UsageError(f"{ds.root}: no train/val/test splits. Split by item first:\n"
                         f"  genuine data split {ds.root} --item-pattern REGEX")
    return [r for r in ds.records if r.split == split]


def sample(records: list[Record], n: int) -> list[Record]:
    """Up to n records drawn at random (seed 0, so the same every time), in their original order."""
    return [records[i] for i in sorted(np.random.default_rng(0).permutation(len(records))[:n])]


def fingerprint(records: list[Record]) -> str:
    """sha256 over what defines the data: paths, labels, products, items, splits and file sizes."""
    h = hashlib.sha256()
    for r in sorted(records, key=lambda r: r.rel):
        size = os.path.getsize(r.path) if r.path.exists() else -1
        h.update(f"{r.rel}\t{r.product}\t{r.label}\t{r.item_id}\t{r.split}\t{size}\n".encode())
    return h.hexdigest()


def decode_all(records: list[Record], size: int, threads: int = 0) -> tuple[np.ndarray, dict[int, str]]:
    """Letterboxed uint8 (N, size, size, 3) for every record, and {index: reason} for unreadable ones."""
    out = np.full((len(records), size, size, 3), PAD_VALUE, np.uint8)

    def one(i: int):
        try:
            out[i] = photo_input(records[i].path, size).x   # the inspector's own input path
        except PhotoError as e:
            return i, str(e)

    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as ex:  # PIL decodes without the GIL
        bad = dict(r for r in ex.map(one, range(len(records))) if r)
    return out, bad


class PhotoSet(Dataset):
    """Decoded once into memory (a SynthPack epoch re-reads nothing); augmentation per sample and epoch."""

    def __init__(self, records: list[Record], size: int, products: list[str], augment: bool = False, seed: int = 0):
        if not records:
            raise UsageError("no photos in this split")
        self.images, bad = decode_all(records, size)
        self.bad = list(bad.values())  # reported by the trainer; one bad photo never stops training
        keep = [i for i in range(len(records)) if i not in bad]
        self.records = [records[i] for i in keep]
        self.images = self.images[keep]
        self.labels = torch.tensor([r.label == "counterfeit" for r in self.records], dtype=torch.float32)
        index = {p: i for i, p in enumerate(products)}
        self.products = torch.tensor([index.get(r.product, -1) for r in self.records], dtype=torch.long)
        self.size, self.seed, self.epoch = size, seed, 0
        self.aug = None
        if augment:  # albumentations only when augmenting: evaluation and export never import it
            from genuine.train import augment as aug_module

            self.aug, self._apply = aug_module.build(size), aug_module.apply

    def __len__(self) -> int:
        return len(self.records)

    def __getitem__(self, i: int):
        img = self.images[i]
        if self.aug is not None:
            img = self._apply(self.aug, img, seed=(self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
        return torch.from_numpy(np.ascontiguousarray(img)), self.labels[i], self.products[i], i
