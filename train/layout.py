"""Dataset layouts: find the photos, their product, label, item and split.

Two folder layouts (see datasets/README.md), optionally with ROOT/manifest.csv:

    ROOT/<product>/<genuine|counterfeit>/**/photo.jpg     several products
    ROOT/<genuine|counterfeit>/**/photo.jpg               one product, named after ROOT

Label folders may use common synonyms (real, authentic, original; fake, replica).
manifest.csv needs `path` (relative to ROOT, '/'-separated) and may carry `label`,
`product`, `item_id`, `split` and any other columns (SynthPack adds defect and capture
parameters); missing values fall back to what the folders say.

    ds = discover("datasets/synthpack")
    for r in ds.records: print(r.rel, r.product, r.label, r.item_id, r.split)
"""
from __future__ import annotations

import csv
import os
import re
from dataclasses import dataclass, field
from pathlib import Path

from genuine.infer.atomic import atomic_write
from genuine.infer.errors import GenuineError

LABELS = ("genuine", "counterfeit")
LABEL_SYNONYMS = {
    "genuine": "genuine", "real": "genuine", "authentic": "genuine", "original": "genuine", "legit": "genuine",
    "counterfeit": "counterfeit", "counterfeits": "counterfeit", "fake": "counterfeit", "fakes": "counterfeit",
    "replica": "counterfeit", "replicas": "counterfeit", "forgery": "counterfeit", "forged": "counterfeit",
}
SPLITS = ("train", "val", "test")
SPLIT_SYNONYMS = {"train": "train", "training": "train", "val": "val", "valid": "val", "validation": "val",
                  "dev": "val", "test": "test", "testing": "test", "holdout": "test"}
MANIFEST = "manifest.csv"


class LayoutError(GenuineError, ValueError):
    """The folder is not in a layout genuine understands; the message says what was expected."""


@dataclass
class Record:
    rel: str                 # path relative to ROOT, '/'-separated (the key everywhere)
    path: Path               # absolute path
    product: str
    label: str               # genuine | counterfeit
    item_id: str | None = None
    split: str | None = None
    extra: dict = field(default_factory=dict)  # other manifest columns, as strings


@dataclass
class Dataset:
    root: Path
    layout: str              # "products" or "single"
    records: list[Record]
    manifest: Path | None
    warnings: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)    # manifest rows whose file is absent

    @property
    def products(self) -> list[str]:
        return sorted({r.product for r in self.records})


def normalise_label(name: str) -> str | None:
    return LABEL_SYNONYMS.get(name.strip().lower())


def normalise_split(name: str) -> str | None:
    return SPLIT_SYNONYMS.get(name.strip().lower()) if name and name.strip() else None


def _files_under(folder: Path):
    for dirpath, dirnames, filenames in os.walk(folder):
        dirnames[:] = sorted(d for d in dirnames if not d.startswith("."))
        for f in sorted(filenames):
            if not f.startswith("."):
                yield Path(dirpath) / f


def _label_dirs(folder: Path) -> dict[Path, str]:
    return {d: normalise_label(d.name) for d in sorted(folder.iterdir())
            if d.is_dir() and normalise_label(d.name)}


def _from_folders(root: Path) -> tuple[str, list[Record], list[str]]:
    warnings = []
    top = _label_dirs(root)
    if top:
        layout, groups = "single", [(root.name, top)]
    else:
        layout, groups = "products", []
        for d in sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith(".")):
            labels = _label_dirs(d)
            if labels:
                groups.append((d.name, labels))
            else:
                warnings.append(f"{d.name}/: no genuine/ or counterfeit/ folder inside; ignored")
    if not groups:
        raise LayoutError(f"{root}: expected ROOT/<product>/<genuine|counterfeit>/ or ROOT/<genuine|counterfeit>/ "
                          f"(synonyms: {', '.join(sorted(LABEL_SYNONYMS))}); found neither")
    records = []
    for product, labels in groups:
        for d, label in labels.items():
            for f in _files_under(d):
                records.append(Record(f.relative_to(root).as_posix(), f, product, label))
    return layout, records, warnings


def read_manifest(path: Path) -> list[dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        if not reader.fieldnames or "path" not in reader.fieldnames:
            raise LayoutError(f"{path}: a manifest needs a 'path' column; found {reader.fieldnames}")
        return list(reader)


def write_manifest(path: Path, rows: list[dict], columns: list[str] | None = None) -> None:
    """Write a CSV atomically (a crash never leaves half a manifest)."""
    columns = columns or list(dict.fromkeys(k for row in rows for k in row))
    with atomic_write(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=columns, extrasaction="ignore", lineterminator="\n")
        w.writeheader()
        w.writerows(rows)


def discover(root: str | os.PathLike) -> Dataset:
    root = Path(root).resolve()
    if not root.is_dir():
        raise LayoutError(f"{root}: not a folder")
    layout, records, warnings = _from_folders(root)
    manifest = root / MANIFEST
    if not manifest.exists():
        return Dataset(root, layout, records, None, warnings)

    by_rel = {r.rel: r for r in records}
    listed, missing, out = set(), [], []
    for i, row in enumerate(read_manifest(manifest), start=2):
        rel = row["path"].strip().replace("\\", "/")
        if not rel or rel.startswith("/") or ".." in rel.split("/"):
            warnings.append(f"{MANIFEST} line {i}: path {rel!r} is outside the dataset folder; ignored")
            continue
        r = by_rel.get(rel)
        if r is None:
            if not (root / rel).is_file():
                missing.append(rel)
                continue
            r = Record(rel, root / rel, root.name if layout == "single" else rel.split("/")[0], "")
        label = normalise_label(row.get("label") or "") or r.label
        if not label:
            warnings.append(f"{MANIFEST} line {i}: {rel} has no usable label; ignored")
            continue
        split_raw = row.get("split") or ""
        split = normalise_split(split_raw)
        if split_raw.strip() and split is None:
            warnings.append(f"{MANIFEST} line {i}: unknown split {split_raw!r} (use train, val or test)")
        extra = {k: v for k, v in row.items() if k not in ("path", "label", "product", "item_id", "split") and k}
        out.append(Record(rel, r.path, (row.get("product") or "").strip() or r.product, label,
                          (row.get("item_id") or "").strip() or None, split, extra))
        listed.add(rel)
    unlisted = [r for r in records if r.rel not in listed]
    if unlisted:
        warnings.append(f"{len(unlisted)} file(s) under label folders are not in {MANIFEST} "
                        f"(first: {unlisted[0].rel}); they are included without item id or split")
        out.extend(unlisted)
    return Dataset(root, layout, out, manifest, warnings, missing)


def item_ids_from_pattern(records: list[Record], pattern: str) -> list[str | None]:
    """Item id per record from a regex on the file name; group 1 (or the whole match) is the id."""
    rx = re.compile(pattern)
    out = []
    for r in records:
        m = rx.search(Path(r.rel).name)
        out.append(None if m is None else (m.group(1) if rx.groups else m.group(0)))
    return out
