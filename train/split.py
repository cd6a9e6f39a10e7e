"""Write ROOT/manifest.csv with an item-aware, stratified train/val/test split.

    genuine data split datasets/my-photos --item-pattern 'item_(\\d+)_'
    genuine data split datasets/synthpack --force --seed 1    # re-split; item ids and columns are kept

Photos of one physical item look alike, so splitting photo by photo leaks: the model is
tested on items it has seen. Here all photos of an item go to one split, byte-identical files
stay together even under different item ids, and each (product, label) stratum is divided
by the ratios so that every split sees every class.

    from genuine.train.split import split_dataset
    rows, columns, warnings = split_dataset("datasets/my-photos", item_pattern=r"item_(\\d+)_")
"""
from __future__ import annotations

import hashlib
import math
import re
import sys
from collections import defaultdict
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np

from genuine.infer.errors import UsageError
from genuine.infer.photo import printable
from genuine.train.layout import MANIFEST, SPLITS, LayoutError, discover, item_ids_from_pattern, write_manifest

FIRST_COLUMNS = ["path", "product", "label", "item_id", "split"]
SHOW = 3  # file names quoted in a warning


class AlreadySplit(Exception):
    """manifest.csv already assigns splits and --force was not given."""


def parse_ratios(ratios) -> tuple[float, float, float]:
    """'0.7,0.15,0.15' or a sequence of three numbers -> validated (train, val, test) fractions."""
    try:
        parts = tuple(float(x) for x in (ratios.split(",") if isinstance(ratios, str) else ratios))
    except (TypeError, ValueError):
        parts = ()
    if len(parts) != 3 or not all(math.isfinite(r) and r >= 0 for r in parts) or abs(sum(parts) - 1) > 1e-6:
        raise UsageError(f"--ratios {ratios!r}: expected three non-negative train,val,test fractions "
                         f"that sum to 1, e.g. 0.7,0.15,0.15")
    return parts


def allocate(n: int, ratios) -> list[int]:
    """Items per split by the largest-remainder method; with >= 3 items, no non-zero split is empty."""
    quotas = [n * r / sum(ratios) for r in ratios]
    counts = [math.floor(q) for q in quotas]
    by_remainder = sorted(range(len(ratios)), key=lambda k: (counts[k] - quotas[k], k))
    for k in by_remainder[:n - sum(counts)]:
        counts[k] += 1
    if n >= 3:
        for k, r in enumerate(ratios):
            if r > 0 and counts[k] == 0:
                counts[max(range(len(counts)), key=counts.__getitem__)] -= 1
                counts[k] += 1
    return counts


def _sha256(path) -> str | None:
    try:
        return hashlib.sha256(Path(path).read_bytes()).hexdigest()
    except OSError:
        return None  # unreadable files cannot be matched; `data check` reports them


def _pattern_ids(records, pattern: str) -> tuple[list[str | None], list[str]]:
    """Item ids from file names. Numbering often restarts in each label folder, and an item cannot be
    both genuine and counterfeit, so an id found under both labels of a product names two items."""
    ids = [i or None for i in item_ids_from_pattern(records, pattern)]
    labels = defaultdict(set)
    for r, i in zip(records, ids):
        if i:
            labels[(r.product, i)].add(r.label)
    clash = sorted(k for k, v in labels.items() if len(v) > 1)
    if not clash:
        return ids, []
    ids = [f"{r.label}-{i}" if i and len(labels[(r.product, i)]) > 1 else i for r, i in zip(records, ids)]
    return ids, [f"{len(clash)} item id(s) from --item-pattern occur under both genuine and counterfeit "
                 f"(first: {clash[0][0]} {clash[0][1]}); kept apart as genuine-ID and counterfeit-ID"]


def item_ids(records, pattern: str | None) -> tuple[list[str | None], list[str]]:
    """Item id per record (the manifest's, else the pattern's) and warnings about records without one."""
    ids = [r.item_id for r in records]
    need = [k for k, i in enumerate(ids) if not i]
    warnings = []
    if pattern and need:
        found, warnings = _pattern_ids([records[k] for k in need], pattern)
        for k, i in zip(need, found):
            ids[k] = i
    loose = [Path(r.rel).name for r, i in zip(records, ids) if i is None]
    if not loose:
        return ids, warnings
    first = ", ".join(loose[:SHOW]) + (", ..." if len(loose) > SHOW else "")
    if pattern:
        msg = (f"{len(loose)} file(s) do not match --item-pattern {pattern!r} ({first}); "
               f"each is treated as its own item")
    elif len(loose) == len(records):
        msg = ("no item ids (no item_id in manifest.csv, no --item-pattern): every photo is treated as its own "
               "item, so photos of one physical item may leak across splits; pass --item-pattern REGEX "
               "whose group 1 is the item id, e.g. 'item_(\\d+)_'")
    else:
        msg = (f"{len(loose)} photo(s) have no item_id in manifest.csv ({first}); each is treated as its own item "
               f"(--item-pattern REGEX can name their items)")
    return ids, warnings + [msg]


def group_items(records, ids, shas) -> list[tuple]:
    """Group key per record: an item's photos share one, and byte-identical files are merged (union-find)."""
    parent = {}

    def find(x):
        parent.setdefault(x, x)
        while parent[x] != x:
            parent[x] = parent[parent[x]]
            x = parent[x]
        return x

    keys = [("item", r.product, i) if i else ("file", r.rel) for r, i in zip(records, ids)]
    first_with = {}
    for key, sha in zip(keys, shas):
        root = find(key)
        if sha:
            other = find(first_with.setdefault(sha, key))
            # The smaller key becomes the root, so the grouping does not depend on record order.
            parent[max(root, other)] = min(root, other)
    return [find(k) for k in keys]


def assign_splits(records, groups, ratios, seed: int) -> dict:
    """Split per group: each (product, label) stratum's groups shuffled and cut by the ratios."""
    members = defaultdict(list)
    for r, g in zip(records, groups):
        members[g].append(r)
    strata = defaultdict(list)
    for g in sorted(members):  # sorted, so filesystem order cannot change the result
        first = min(members[g], key=lambda r: r.rel)  # a merged group spanning strata goes by its first file
        strata[(first.product, first.label)].append(g)
    rng = np.random.default_rng(seed)
    split_of = {}
    for stratum in sorted(strata):
        gs = strata[stratum]
        names = [s for s, c in zip(SPLITS, allocate(len(gs), ratios)) for _ in range(c)]
        for idx, name in zip(rng.permutation(len(gs)), names):
            split_of[gs[idx]] = name
    return split_of


def split_dataset(root, item_pattern: str | None = None, ratios=(0.7, 0.15, 0.15), seed: int = 0,
                  force: bool = False) -> tuple[list[dict], list[str], list[str]]:
    """Manifest rows, their columns and warnings for an item-aware stratified split of root.

    Raises ValueError for bad ratios or pattern (LayoutError, a ValueError, for an unusable folder)
    and AlreadySplit when manifest.csv has splits and not force.
    """
    ratios = parse_ratios(ratios)
    if item_pattern:
        try:
            re.compile(item_pattern)
        except re.error as e:
            raise UsageError(f"--item-pattern {item_pattern!r}: not a valid regex ({e})") from None
    ds = discover(root)
    records = ds.records
    if not records:
        raise LayoutError(f"{ds.root}: no photos found under the label folders")
    assigned = sum(1 for r in records if r.split)
    if ds.manifest and assigned and not force:
        raise AlreadySplit(f"{ds.manifest} already assigns {assigned} photo(s) to splits; pass --force to "
                           f"re-split (item ids and the other columns are kept)")
    warnings = list(ds.warnings)
    if ds.missing:
        warnings.append(f"{len(ds.missing)} manifest row(s) name missing files ({', '.join(ds.missing[:SHOW])}); "
                        f"they are left out of the new manifest")
    ids, id_warnings = item_ids(records, item_pattern)
    warnings += id_warnings
    with ThreadPoolExecutor() as pool:  # hashlib releases the GIL: reading and hashing overlap
        shas = list(pool.map(_sha256, [r.path for r in records]))
    groups = group_items(records, ids, shas)
    split_of = assign_splits(records, groups, ratios, seed)
    rows = [{**r.extra, "path": r.rel, "product": r.product, "label": r.label, "item_id": i or "",
             "split": split_of[g]} for r, i, g in zip(records, ids, groups)]
    columns = FIRST_COLUMNS + list(dict.fromkeys(k for r in records for k in r.extra))
    return rows, columns, warnings


def counts_table(rows) -> list[str]:
    """product x label rows, items/photos per split."""
    photos, items = defaultdict(int), defaultdict(set)
    for row in rows:
        key = (row["product"], row["label"], row["split"])
        photos[key] += 1
        items[key].add(row["item_id"] or row["path"])
    strata = sorted({(p, l) for p, l, _ in photos})
    w = max([len("product")] + [len(p) for p, _ in strata])
    lines = [f"{'product':<{w}}  {'label':<11}" + "".join(f"{s:>12}" for s in SPLITS) + "   (items/photos)"]
    for p, l in strata:
        lines.append(f"{p:<{w}}  {l:<11}" + "".join(f"{f'{len(items[(p, l, s)])}/{photos[(p, l, s)]}':>12}"
                                                   for s in SPLITS))
    return lines


def main(args) -> int:
    try:
        rows, columns, warnings = split_dataset(args.root, args.item_pattern, args.ratios, args.seed, args.force)
    except AlreadySplit as e:
        print(f"genuine data split: {e}", file=sys.stderr)
        return 1
    except ValueError as e:  # bad --ratios, bad --item-pattern or a LayoutError
        print(f"genuine data split: {e}", file=sys.stderr)
        return 2
    for w in warnings:
        print(f"warning: {w}", file=sys.stderr)
    manifest = Path(args.root) / MANIFEST
    write_manifest(manifest, rows, columns)
    print(printable("\n".join(counts_table(rows))))   # product names are folder names
    print(f"\nManifest saved to {printable(str(manifest))}")
    print(f"Next: genuine data check {printable(args.root)}")
    return 0
