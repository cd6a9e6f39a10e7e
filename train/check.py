"""Validate a dataset before training: counts, unreadable files, duplicates, leakage.

    genuine data check datasets/synthpack
    genuine data check datasets/my-photos --near-threshold 6 --json report.json

Every file is read, hashed (sha256 of the bytes) and decoded through infer.photo.load_photo,
the same path training and inference use, so a file that passes here loads everywhere.
A 64-bit perceptual hash (imagehash.phash) finds near duplicates: the same photo
re-encoded, resized or brightened, but also two items that look alike by design (two
banknotes of one series), so a near pair across splits is a warning to look at, not leakage.
Exits 1 on leakage (exact duplicates across splits, items straddling splits, items with
both labels) or on any bad file.

    from genuine.train.check import check_dataset
    report = check_dataset("datasets/synthpack", near_threshold=4, workers=1)
"""
from __future__ import annotations

import hashlib
import json
import os
import sys
from collections import Counter, defaultdict
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path

import imagehash  # the 'train' extra; the CLI checks for it before importing this module
import numpy as np

from genuine.infer.atomic import write_text
from genuine.infer.photo import PhotoError, is_photo_path, load_photo, printable
from genuine.train.layout import SPLITS, LayoutError, discover

CHUNKSIZE = 16
BLOCK_ELEMS = 1 << 20  # pairs per numpy step: 8 MB of uint64, cache-friendlier than larger blocks
IMBALANCE_RATIO = 0.5


def inspect_file(path: str) -> tuple[str | None, int | None, str | None, str | None]:
    """(sha256, phash as int, bad kind, reason) for one file; kind is None when the photo is usable."""
    if not is_photo_path(path):
        return None, None, "not_image", f"not a photo file (suffix {Path(path).suffix or 'none'})"
    try:
        data = Path(path).read_bytes()
    except FileNotFoundError:
        return None, None, "missing", "file not found"
    except OSError as e:
        return None, None, "unreadable", f"cannot read file ({e.strerror or e})"
    sha = hashlib.sha256(data).hexdigest()
    try:
        # Bytes, not the path: the file is read once. min_side: large JPEGs decode at a fraction of full size.
        img = load_photo(data, min_side=128)
    except PhotoError as e:
        return sha, None, e.kind, e.reason
    except Exception as e:  # a decoder bug on one file must not abort a check of 10^5 (or kill a worker)
        return sha, None, "unreadable", f"cannot decode ({type(e).__name__}: {e})"
    bits = imagehash.phash(img).hash  # 8x8 bools, row-major: the same bit order as str(hash)
    return sha, int.from_bytes(np.packbits(bits).tobytes(), "big"), None, None


def inspect_all(paths: list[str], workers: int = 0) -> list[tuple]:
    workers = workers or os.cpu_count() or 1
    workers = min(workers, -(-len(paths) // CHUNKSIZE))  # no idle processes for small datasets
    if workers <= 1:
        return [inspect_file(p) for p in paths]
    with ProcessPoolExecutor(workers) as pool:
        return list(pool.map(inspect_file, paths, chunksize=CHUNKSIZE))


def near_pairs(hashes, threshold: int) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Index pairs i < j whose 64-bit hashes differ in <= threshold bits, and their distances.

    Brute force in row blocks of the upper triangle: O(n^2) bit operations, but all in numpy,
    so 10^5 photos (5e9 pairs) take under half a minute on one core, not hours.
    """
    h = np.asarray(hashes, dtype=np.uint64)
    n = len(h)
    step = max(1, BLOCK_ELEMS // max(n, 1))
    parts = [(np.zeros(0, np.int64), np.zeros(0, np.int64), np.zeros(0, np.int64))]
    for s in range(0, n, step):
        d = np.bitwise_count(h[s:s + step, None] ^ h[None, s:])
        i, j = np.nonzero(d <= threshold)
        keep = j > i  # both indices are offset by s here, so j > i is the strict upper triangle
        i, j = i[keep], j[keep]
        parts.append((i + s, j + s, d[i, j].astype(np.int64)))
    return tuple(np.concatenate(col) for col in zip(*parts))


def _leaks(splits) -> bool:
    return len({s for s in splits if s}) > 1


def _exact_duplicates(records, shas) -> dict:
    by_sha = defaultdict(list)
    for r, sha in zip(records, shas):
        if sha:
            by_sha[sha].append(r)
    groups = {"across_splits": [], "within_split": []}
    for sha, rs in sorted(by_sha.items(), key=lambda kv: kv[1][0].rel):
        if len(rs) > 1:
            splits = [r.split for r in rs]
            groups["across_splits" if _leaks(splits) else "within_split"].append(
                {"sha256": sha, "paths": [r.rel for r in rs], "splits": splits})
    return groups


def _codes(values) -> np.ndarray:
    """Small ints for hashable values; None becomes -1."""
    index = {}
    return np.array([-1 if v is None else index.setdefault(v, len(index)) for v in values], dtype=np.int64)


TWIN_OF = "twin of "   # SynthPack --twins: the genuine twin's defect_detail is "twin of <counterfeit item id>"


def twin_of(r) -> str | None:
    """The item whose twin this record's item is, when the dataset declares it: a manifest column twin_of, or
    SynthPack's defect_detail "twin of ITEM". A counterfeit and its genuine twin are the same print photographed
    under the same capture, near duplicates by design."""
    declared = (r.extra.get("twin_of") or "").strip()
    detail = r.extra.get("defect_detail") or ""
    return declared or (detail[len(TWIN_OF):].strip() if detail.startswith(TWIN_OF) else "") or None


def _item_groups(records) -> np.ndarray:
    """Per record, a code shared by the photos of one item and of its declared twin (-1: no item id)."""
    return _codes([(r.product, twin_of(r) or r.item_id) if r.item_id else None for r in records])


def _near_duplicates(records, shas, phashes, threshold: int) -> tuple[dict, int]:
    """Near pairs across and within splits, and the number of declared-twin pairs left out."""
    good = np.array([k for k, p in enumerate(phashes) if p is not None], dtype=np.int64)
    i, j, dist = near_pairs([phashes[k] for k in good], threshold)
    i, j = good[i], good[j]
    # Filtered in numpy: a cluster of k look-alikes is k^2/2 pairs, too many for a Python loop at scale.
    sha = _codes(shas)
    item = _codes([(r.product, r.item_id) if r.item_id else None for r in records])
    group = _item_groups(records)
    split = _codes([r.split for r in records])
    # Exact pairs are reported as exact ones, and photos of one item are expected to look alike. So are an item
    # and its declared twin in one split: counted, not listed (a SynthPack --twins set has hundreds); twins in
    # two splits stay listed, the same print on both sides being worth a look.
    exact = sha[i] == sha[j]
    one_item = (item[i] == item[j]) & (item[i] >= 0)
    twins = ~exact & ~one_item & (group[i] == group[j]) & (group[i] >= 0) & (split[i] == split[j])
    keep = ~exact & ~one_item & ~twins
    i, j, dist = i[keep], j[keep], dist[keep]
    across = (split[i] != split[j]) & (split[i] >= 0) & (split[j] >= 0)
    groups = {"across_splits": [], "within_split": []}
    for a, b, d, x in zip(i.tolist(), j.tolist(), dist.tolist(), across.tolist()):
        groups["across_splits" if x else "within_split"].append(
            {"paths": [records[a].rel, records[b].rel], "splits": [records[a].split, records[b].split], "distance": d})
    return groups, int(twins.sum())


def _item_problems(records) -> tuple[list, list]:
    items = defaultdict(list)
    for r in records:
        if r.item_id:
            items[(r.product, r.item_id)].append(r)
    straddling, both_labels = [], []
    for (product, item_id), rs in sorted(items.items()):
        entry = {"product": product, "item_id": item_id, "paths": [r.rel for r in rs]}
        if _leaks(r.split for r in rs):
            straddling.append({**entry, "splits": [s for s in SPLITS if any(r.split == s for r in rs)]})
        if len({r.label for r in rs}) > 1:
            both_labels.append(entry)
    return straddling, both_labels


def _imbalance(records) -> list:
    per_product = defaultdict(Counter)
    for r in records:
        per_product[r.product][r.label] += 1
    out = []
    for product, c in sorted(per_product.items()):
        g, f = c["genuine"], c["counterfeit"]
        if min(g, f) == 0:
            note = f"no {'genuine' if g == 0 else 'counterfeit'} photos"
        elif min(g, f) / max(g, f) < IMBALANCE_RATIO:
            note = f"minority/majority = {min(g, f) / max(g, f):.2f}"
        else:
            continue
        out.append({"product": product, "genuine": g, "counterfeit": f, "note": note})
    return out


SHORTCUT_AUROC = 0.65  # above this, global photo statistics alone predict the label


def near_warning(n: int) -> str:
    """Near pairs across splits are only a warning: look-alike items are normal, one item in two splits is not."""
    return (f"{_plural(n, 'near-duplicate pair')} across splits (warning: look at them; different items that "
            f"look alike are normal, the same item in two splits is leakage)")


def check_dataset(root, near_threshold: int = 4, workers: int = 0, audit_shortcuts: bool = False) -> dict:
    """Inspect every file of the dataset at root; returns the report (raises LayoutError)."""
    ds = discover(root)
    records = ds.records
    results = inspect_all([str(r.path) for r in records], workers)
    shas, phashes = [x[0] for x in results], [x[1] for x in results]
    bad = [{"path": r.rel, "kind": kind, "reason": reason}
           for r, (_, _, kind, reason) in zip(records, results) if kind]
    bad += [{"path": rel, "kind": "missing", "reason": "listed in manifest.csv but not found"} for rel in ds.missing]
    counts = Counter((r.product, r.label, r.split or "-") for r in records)
    straddling, both_labels = _item_problems(records)
    near, twin_pairs = _near_duplicates(records, shas, phashes, near_threshold)
    report = {
        "root": str(ds.root),
        "layout": ds.layout,
        "manifest": ds.manifest is not None,
        "photos": len(records),
        "products": ds.products,
        "counts": [{"product": p, "label": l, "split": s, "photos": n} for (p, l, s), n in sorted(counts.items())],
        "splits": {s: sum(1 for r in records if r.split == s) for s in SPLITS},
        "has_splits": any(r.split for r in records),
        "bad_files": bad,
        "exact_duplicates": _exact_duplicates(records, shas),
        "near_duplicates": near,
        "near_duplicate_twin_pairs": twin_pairs,   # declared twins: alike by design, counted and not listed
        "near_threshold": near_threshold,
        "items_straddling_splits": straddling,
        "items_with_both_labels": both_labels,
        "imbalance": _imbalance(records),
        "warnings": list(ds.warnings),
    }
    # Near pairs across splits are not leakage by themselves (near_warning); exact copies and shared items are.
    report["leakage"] = bool(report["exact_duplicates"]["across_splits"] or straddling or both_labels)
    if report["near_duplicates"]["across_splits"]:
        report["warnings"].append(near_warning(len(report["near_duplicates"]["across_splits"])))
    report["ok"] = not (report["leakage"] or bad) and len(records) > 0
    if audit_shortcuts and {r.label for r in records} == {"genuine", "counterfeit"}:
        from genuine.train.shortcuts import audit

        report["shortcut_audit"] = audit(records, workers)
        if report["shortcut_audit"]["auroc"] > SHORTCUT_AUROC:
            worst = max(report["shortcut_audit"]["per_feature"].items(), key=lambda kv: kv[1])
            report["warnings"].append(
                f"capture shortcut: global photo statistics predict the label (AUROC "
                f"{report['shortcut_audit']['auroc']:.2f}; strongest: {worst[0]} {worst[1]:.2f}); photograph "
                f"both classes with the same phones, light and backgrounds, or a model will learn those")
    return report


# ----------------------------------------------------------------------------- printing

def _plural(n: int, word: str, plural: str | None = None) -> str:
    return f"{n} {word if n == 1 else plural or word + 's'}"


def _tag(paths, splits) -> str:
    return ", ".join(f"{p} [{s or '-'}]" for p, s in zip(paths, splits))


def _counts_table(report) -> list[str]:
    cols = [s for s in (*SPLITS, "-") if any(c["split"] == s for c in report["counts"])]
    cells = defaultdict(int)
    for c in report["counts"]:
        cells[(c["product"], c["label"], c["split"])] += c["photos"]
    rows = sorted({(p, l) for p, l, _ in cells})
    w = max([len("product")] + [len(p) for p, _ in rows])
    lines = [f"{'product':<{w}}  {'label':<11}" + "".join(f"{s:>7}" for s in cols) + f"{'total':>7}"]
    for p, l in rows:
        n = [cells[(p, l, s)] for s in cols]
        lines.append(f"{p:<{w}}  {l:<11}" + "".join(f"{x:>7}" for x in n) + f"{sum(n):>7}")
    return lines


def _near(g) -> str:
    return f"{_tag(g['paths'], g['splits'])} (distance {g['distance']})"


def _item(g) -> str:
    return f"{g['product']} item {g['item_id']}: " + ", ".join(g["paths"])


def _sections(report) -> list[tuple[str, list[str]]]:
    ex, near = report["exact_duplicates"], report["near_duplicates"]
    return [
        ("Warnings", report["warnings"]),
        ("Bad files", [f"{b['path']}: {b['kind']}: {b['reason']}" for b in report["bad_files"]]),
        ("Exact duplicates across splits (leakage)", [_tag(g["paths"], g["splits"]) for g in ex["across_splits"]]),
        ("Near duplicates across splits (warning: look at each pair; the same item in two splits is leakage)",
         [_near(g) for g in near["across_splits"]]),
        ("Items straddling splits (leakage)",
         [_item(g) + f" in {'/'.join(g['splits'])}" for g in report["items_straddling_splits"]]),
        ("Items labelled both genuine and counterfeit", [_item(g) for g in report["items_with_both_labels"]]),
        ("Exact duplicates within a split (informational)",
         [_tag(g["paths"], g["splits"]) for g in ex["within_split"]]),
        ("Near duplicates within a split (informational)", [_near(g) for g in near["within_split"]]),
        ("Class imbalance (warning)", [f"{g['product']}: {g['genuine']} genuine, {g['counterfeit']} counterfeit; "
                                       f"{g['note']}" for g in report["imbalance"]]),
    ]


def summary_line(report) -> str:
    head = f"{_plural(report['photos'], 'photo')}, {_plural(len(report['products']), 'product')}"
    kinds = Counter(b["kind"] for b in report["bad_files"])
    problems = [
        (sum(n for k, n in kinds.items() if k != "missing"), "unreadable", "unreadable", ""),
        (kinds["missing"], "missing file", None, ""),
        (len(report["exact_duplicates"]["across_splits"]), "exact duplicate", None, " across splits"),
        (len(report["items_straddling_splits"]), "item", None, " straddling splits"),
        (len(report["items_with_both_labels"]), "item", None, " with both labels"),
    ]
    problems = [_plural(n, word, plural) + tail for n, word, plural, tail in problems if n]
    near = len(report["near_duplicates"]["across_splits"])
    look = f"; warning: {_plural(near, 'near-duplicate pair')} across splits to look at" if near else ""
    if problems:
        return f"FAIL: {head}; " + ", ".join(problems) + look
    if not report["photos"]:
        return "FAIL: no photos found under the label folders"
    if report["has_splits"]:
        sp = report["splits"]
        head += f", splits {'/'.join(sp)} = {'/'.join(str(n) for n in sp.values())}"
    else:
        head += ", no splits yet"
    return f"OK: {head}; no leakage, no unreadable files{look}"


def _say(text: str = "") -> None:
    """Print a report line: paths are file and folder names, which need not be UTF-8 on disk (printable)."""
    print(printable(text))


def _section(title: str, lines: list[str], max_list: int) -> None:
    _say(f"\n{title} ({len(lines)}):")
    for line in lines[:max_list]:
        _say(f"  {line}")
    if len(lines) > max_list:
        # the full list is in --json FILE: a terminal is for the first few and the count
        _say(f"  ... and {len(lines) - max_list} more (--max-list N shows more; --json FILE has them all)")


def print_report(report, max_list: int = 10) -> None:
    _say(f"{report['root']} ({report['layout']} layout{', manifest.csv' if report['manifest'] else ''})")
    _say("\n".join(_counts_table(report)) if report["counts"] else "no photos found")
    for title, lines in _sections(report):
        if lines:
            _section(title, lines, max_list)
    if twins := report.get("near_duplicate_twin_pairs"):
        _say(f"\n{_plural(twins, 'near-duplicate pair')} of an item and its declared twin (alike by design) "
             f"not listed")
    if not report["has_splits"]:
        _say(f"\nNo splits yet: no photo is assigned to train, val or test. For an item-aware split run:\n"
             f"  genuine data split {report['root']}")
    if "shortcut_audit" in report:
        a = report["shortcut_audit"]
        _say(f"\nShortcut audit: logistic regression on global statistics (colour mean/spread, sharpness, "
             f"file size) gives AUROC {a['auroc']:.3f} over {a['photos']} photos (0.5 = no shortcut)")
    _say(f"\n{summary_line(report)}")


def main(args) -> int:
    try:
        report = check_dataset(args.root, near_threshold=args.near_threshold, workers=args.workers,
                               audit_shortcuts=args.audit_shortcuts)
    except LayoutError as e:
        print(f"genuine data check: {e}", file=sys.stderr)
        return 2
    print_report(report, max_list=args.max_list)
    if args.json:
        write_text(args.json, json.dumps(report, indent=2) + "\n")
        _say(f"Report saved to {args.json}")
    return 0 if report["ok"] else 1
