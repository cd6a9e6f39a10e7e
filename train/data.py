"""Training data: records of a dataset split -> uint8 tensors, decoded once through infer/ into a memory-mapped
cache, augmented in DataLoader workers.

    ds = discover("datasets/synthpack")
    train_set = PhotoSet(select(ds, "train"), size=320, products=ds.products, augment=True)
    x, y, product, index = train_set[0]
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch
from torch.utils.data import Dataset

from genuine.infer.atomic import atomic_write, write_text
from genuine.infer.errors import UsageError
from genuine.infer.model_input import photo_input
from genuine.infer.photo import PhotoError
from genuine.infer.preprocess import PAD_VALUE, spec
from genuine.train.layout import Dataset as Layout
from genuine.train.layout import Record


def select(ds: Layout, split: str) -> list[Record]:
    if not any(r.split for r in ds.records):
        raise UsageError(f"{ds.root}: no train/val/test splits. Split by item first:\n"
                         f"  genuine data split {ds.root} --item-pattern REGEX")
    return [r for r in ds.records if r.split == split]


def items(records: list[Record]) -> list[str]:
    """Each photo's item (product/item id, or the photo itself without one): the unit that bootstraps resample."""
    return [f"{r.product}/{r.item_id or r.rel}" for r in records]


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


def cache_file(records: list[Record], size: int) -> Path | None:
    """Where the decoded split lives: <root>/.cache/photos/ (or $GENUINE_CACHE/photos/), keyed by the photos (path,
    size, mtime) and the preprocessing, so an edited photo or a new input size decodes afresh."""
    if not records:
        return None
    h = hashlib.sha256(json.dumps(spec(size), sort_keys=True).encode())
    for r in records:
        st = r.path.stat() if r.path.exists() else None
        h.update(f"{r.path}\t{st.st_size if st else -1}\t{st.st_mtime_ns if st else -1}\n".encode())
    env = os.environ.get("GENUINE_CACHE")
    root = records[0].path.parents[len(records[0].rel.split("/")) - 1]   # the dataset root
    return (Path(env) if env else root / ".cache") / "photos" / f"{size}-{h.hexdigest()[:24]}.npy"


def decode_all(records: list[Record], size: int, threads: int = 0,
               cache: bool = True) -> tuple[np.ndarray, dict[int, str]]:
    """Letterboxed uint8 (N, size, size, 3) for every record, and {index: reason} for unreadable ones.

    Decoded once into a memory-mapped .npy beside the data (cache_file): RAM stays flat whatever the split's size
    (10^5 photos at 320 px are 31 GB), DataLoader workers share the pages, and a rerun or a resume decodes nothing.
    Without a writable cache folder (or cache=False) the split is decoded into memory, as before."""
    path = cache_file(records, size) if cache else None
    if path is not None and path.exists() and path.with_suffix(".json").exists():
        try:
            bad = {int(k): v for k, v in json.loads(path.with_suffix(".json").read_text()).items()}
            return np.load(path, mmap_mode="r"), bad
        except (OSError, ValueError):
            pass   # a damaged cache is decoded again

    def one(i: int):
        try:
            return photo_input(records[i].path, size).x, None   # the inspector's own input path
        except PhotoError as e:
            return np.full((size, size, 3), PAD_VALUE, np.uint8), str(e)

    bad: dict[int, str] = {}
    with ThreadPoolExecutor(threads or os.cpu_count() or 1) as ex:  # PIL decodes without the GIL
        rows = ex.map(one, range(len(records)))
        if path is not None:
            try:
                with atomic_write(path) as fh:   # rows stream to disk in order: never the whole split in memory
                    np.lib.format.write_array_header_1_0(fh, {"descr": "|u1", "fortran_order": False,
                                                              "shape": (len(records), size, size, 3)})
                    for i, (x, why) in enumerate(rows):
                        fh.write(np.ascontiguousarray(x).tobytes())
                        if why:
                            bad[i] = why
                write_text(path.with_suffix(".json"), json.dumps(bad))
                return np.load(path, mmap_mode="r"), bad
            except OSError as e:
                print(f"warning: could not cache decoded photos in {path.parent} ({e}); decoding into memory",
                      file=sys.stderr)
                rows, bad = ex.map(one, range(len(records))), {}
        out = np.empty((len(records), size, size, 3), np.uint8)
        for i, (x, why) in enumerate(rows):
            out[i] = x
            if why:
                bad[i] = why
    return out, bad


class PhotoSet(Dataset):
    """A split's photos, decoded once (decode_all: memory-mapped); augmentation per sample and epoch, seeded by
    (seed, epoch, index) so that any number of DataLoader workers gives the same batches."""

    def __init__(self, records: list[Record], size: int, products: list[str], augment: bool = False, seed: int = 0,
                 cache: bool = True):
        if not records:
            raise UsageError("no photos in this split")
        self._all, bad = decode_all(records, size, cache=cache)
        self.bad = list(bad.values())  # reported by the trainer; one bad photo never stops training
        self._rows = np.array([i for i in range(len(records)) if i not in bad], int)
        self.records = [records[i] for i in self._rows]
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

    def batch(self, start: int, stop: int) -> np.ndarray:
        """Photos start..stop-1 as one uint8 (n, size, size, 3) array (read from the cache, not the whole split)."""
        return np.ascontiguousarray(self._all[self._rows[start:stop]])

    @property
    def images(self) -> np.ndarray:
        """Every photo in memory: for small sets (calibration, parity), not for training."""
        return self.batch(0, len(self))

    def __getitem__(self, i: int):
        img = np.array(self._all[self._rows[i]])   # a writable copy of the memory-mapped row
        if self.aug is not None:
            img = self._apply(self.aug, img, seed=(self.seed * 1_000_003 + self.epoch) * 10_000_019 + i)
        return torch.from_numpy(np.ascontiguousarray(img)), self.labels[i], self.products[i], i
