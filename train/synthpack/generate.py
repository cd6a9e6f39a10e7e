"""`genuine synth`: plan the benchmark (products, items, labels, splits), render it in parallel.

Every item draws from its own seed ([seed, product, item]), so the output is
byte-identical for the same arguments whatever the number of workers.

    genuine synth datasets/synthpack --products 8 --items-per-class 24 --difficulty medium

Besides the photos it writes each product's template (OUT/<product>/template.png, make_template);
geometry.photo_corners() replays the exact geometry of any photo (where the package face's corners are).
"""
from __future__ import annotations

import json
import os
import sys
import time
from concurrent.futures import ProcessPoolExecutor
from dataclasses import dataclass, replace
from pathlib import Path

import numpy as np
from PIL import Image

from genuine.infer.atomic import write_text
from genuine.infer.errors import UsageError
from genuine.train.layout import MANIFEST, read_manifest, write_manifest
from genuine.train.split import allocate

from .capture import photograph
from .defects import FAMILIES, SEVERITY, counterfeit
from .design import ASPECT, Design, make_design
from .render import Item, render

TEMPLATE = "template.png"  # OUT/<product>/template.png: the product's flat genuine print
VERSION = "2"  # bump when the same arguments would render different pixels
ITEM_COLUMNS = ["path", "product", "label", "item_id", "split", "defect", "severity", "defect_detail",
                "serial", "print_dx", "print_dy", "ink_density", "wear"]
CAPTURE_COLUMNS = ["photo", "scale", "rotation", "perspective", "cx", "cy", "exposure", "wb_r", "wb_b",
                   "gradient", "shadow", "glare", "defocus", "motion", "noise", "jpeg_quality"]


@dataclass(frozen=True)
class Plan:
    seed: int
    product: int
    number: int          # item number within the product (ids do not reveal the label)
    label: str
    defect: str          # "" for genuine
    severity: float
    split: str
    photos: int
    size: int
    capture: float = 1.0  # capture-nuisance strength (1 = the benchmark)
    twin: bool = False    # also photograph this counterfeit's genuine twin (train split only)


def _interleave(counts: list[int]) -> list[str]:
    """Split names in an evenly mixed order (train, train, val, train, test, ...) for these counts."""
    n, done, out = sum(counts), [0, 0, 0], []
    for i in range(n):
        k = max(range(3), key=lambda j: (counts[j] * (i + 1) / max(n, 1) - done[j], -j))
        done[k] += 1
        out.append(("train", "val", "test")[k])
    return out


def plan(products: int, items_per_class: int, photos: int, size: int, difficulty: str,
         holdout: list[str], ratios: list[float], seed: int, capture: float = 1.0, twins: bool = False) -> list[Plan]:
    lo, hi = SEVERITY[difficulty]
    plans = []
    for p in range(products):
        rng = np.random.default_rng([seed, 0x17E5, p])
        numbers = rng.permutation(2 * items_per_class)
        families = [FAMILIES[i % len(FAMILIES)] for i in range(items_per_class)]
        families = [families[i] for i in rng.permutation(items_per_class)]
        genuine = [("genuine", "", 0.0)] * items_per_class
        fakes = sorted((("counterfeit", f, float(rng.uniform(lo, hi))) for f in families), key=lambda m: families.index(m[1]))
        held = [m for m in fakes if m[1] in holdout]
        kept = [m for m in fakes if m[1] not in holdout]
        it = iter(numbers.tolist())
        # Members are ordered by family, splits interleaved: each family spreads over train/val/test.
        for members, splits in ((genuine, _interleave(allocate(len(genuine), ratios))),
                                (kept, _interleave(allocate(len(kept), ratios))), (held, ["test"] * len(held))):
            for (lab, f, sev), split in zip(members, splits):
                plans.append(Plan(seed, p, next(it), lab, f, round(sev, 4), split, photos, size, capture,
                                  twins and lab == "counterfeit" and split == "train"))
    return sorted(plans, key=lambda q: (q.product, q.number))


_DESIGNS: dict = {}


def _design(seed: int, p: int):
    if (seed, p) not in _DESIGNS:
        _DESIGNS[(seed, p)] = make_design(seed, p)
    return _DESIGNS[(seed, p)]


def face_size(size: int) -> tuple[int, int]:
    """(width, height) in pixels of the flat package face (and template) rendered for photos of long side size."""
    width = int(round(size * 0.95))
    return width, int(round(width * ASPECT))


def nominal_item(d: Design) -> Item:
    """The design printed exactly as specified: no print offset, ink density 1, no wear.

    Lot and serial are variable data printed on every unit: the nominal item carries a placeholder
    (LOT <prefix>00  SN 00000000), so the lot line of a template never matches a photo's."""
    return Item(serial="00000000", lot=f"{d.lot_prefix}00", offset=(0.0, 0.0), ink=1.0, wear=0.0, wear_seed=0)


def make_template(seed: int, product: int, size: int) -> Image.Image:
    """Product `product`'s flat genuine print at the photos' scale (face_size(size)): its artwork.

    A genuine item differs from it by its tolerances only: its artwork is shifted by its print offset
    (manifest print_dx, print_dy, in 1/100 of the face width: template pixels = value * width / 100)
    against the die cut (the face's edges, which geometry.photo_corners() locates), its ink density and its wear."""
    d = _design(seed, product)
    return render(d, nominal_item(d), face_size(size)[0])[0]


def write_template(seed: int, product: int, size: int, path) -> None:
    """Save make_template() as PNG; the same arguments give byte-identical files."""
    make_template(seed, product, size).save(path, "PNG", compress_level=6)


def make_package(q: Plan):
    """The flat package face of one physical item: (image, Item, defect detail).

    A counterfeit plan and a genuine plan with the same number share the Item (serial, print offset,
    ink, wear): the pair differs only by the defect (bench/visibility.py relies on it)."""
    d = _design(q.seed, q.product)
    rng = np.random.default_rng([q.seed, q.product, q.number])
    item = Item(serial=f"{int(rng.integers(0, 10**8)):08d}", lot=f"{d.lot_prefix}{int(rng.integers(10, 99))}",
                offset=(float(rng.normal(0, 0.5)), float(rng.normal(0, 0.5))), ink=float(rng.normal(1.0, 0.04)),
                wear=float(rng.beta(1.2, 4.0)), wear_seed=int(rng.integers(0, 2**31)))
    width = face_size(q.size)[0]
    design, fx, detail = d, None, ""
    if q.label == "counterfeit":
        design, fx, detail = counterfeit(d, q.defect, q.severity, rng, width)
    pkg, _ = render(design, item, width, fx)
    return pkg, item, detail


def render_item(q: Plan, out: str) -> list[dict]:
    """Render one physical item and its photos; write the JPEGs; return manifest rows."""
    d = _design(q.seed, q.product)
    pkg, item, detail = make_package(q)
    item_id = f"{d.slug}-{q.number:04d}"
    folder = Path(out) / d.slug / q.label
    folder.mkdir(parents=True, exist_ok=True)
    base = {"product": d.slug, "label": q.label, "item_id": item_id, "split": q.split, "defect": q.defect,
            "severity": q.severity, "defect_detail": detail, "serial": item.serial,
            "print_dx": round(item.offset[0], 3), "print_dy": round(item.offset[1], 3),
            "ink_density": round(item.ink, 4), "wear": round(item.wear, 4)}
    rows = _photos(q, pkg, folder, item_id, base)
    if q.twin:  # the same item printed right, photographed identically: the pair differs by the defect alone
        twin = replace(q, label="genuine", defect="", severity=0.0, twin=False)
        folder = Path(out) / d.slug / "genuine"
        folder.mkdir(parents=True, exist_ok=True)
        rows += _photos(twin, make_package(twin)[0], folder, item_id + "t",
                        {**base, "label": "genuine", "item_id": item_id + "t", "defect": "", "severity": 0.0,
                         "defect_detail": f"twin of {item_id}"})
    return rows


def _photo_rng(q: Plan, k: int) -> np.random.Generator:
    return np.random.default_rng([q.seed, q.product, q.number, k + 1])


def shoot(q: Plan, pkg, k: int) -> tuple[bytes, dict]:
    """Photo k of item q: the capture depends on the item and k, never on the label (twins rely on it)."""
    return photograph(pkg, _photo_rng(q, k), q.size, q.capture)


def _photos(q: Plan, pkg, folder: Path, item_id: str, base: dict) -> list[dict]:
    rows = []
    for k in range(q.photos):
        data, params = shoot(q, pkg, k)
        name = f"{item_id}-{k}.jpg"
        (folder / name).write_bytes(data)
        rows.append({"path": f"{folder.parent.name}/{folder.name}/{name}", **base, "photo": k, **params})
    return rows


def _render_star(args):
    return render_item(*args)


def _prepare_out(out: Path, force: bool) -> None:
    if out.exists() and any(out.iterdir()):
        if not force:
            raise UsageError(f"{out} is not empty; choose an empty folder or pass --force")
        if not (out / "synthpack.json").exists():
            raise UsageError(f"{out} is not empty and holds no SynthPack (no synthpack.json); "
                     "refusing to delete anything there")
        # Remove exactly the previous SynthPack's files, nothing a user added beside them.
        if (out / MANIFEST).exists():
            for row in read_manifest(out / MANIFEST):
                (out / row["path"]).unlink(missing_ok=True)
        try:
            templates = json.loads((out / "synthpack.json").read_text()).get("templates") or {}
        except (OSError, ValueError, AttributeError):
            templates = {}
        for rel in templates.values():  # only the <product>/template.png files it wrote
            if isinstance(rel, str) and rel.count("/") == 1 and rel.endswith("/" + TEMPLATE) and ".." not in rel:
                (out / rel).unlink(missing_ok=True)
        for d in sorted(out.glob("*/*"), reverse=True) + sorted(out.glob("*")):
            if d.is_dir() and not any(d.iterdir()):
                d.rmdir()
    out.mkdir(parents=True, exist_ok=True)


def generate(out, products=8, items_per_class=24, photos_per_item=3, size=1600, difficulty="medium",
             holdout=(), ratios=(0.7, 0.15, 0.15), seed=0, workers=0, force=False, progress=True,
             capture: float = 1.0, twins: bool = False) -> dict:
    out = Path(out)
    holdout = [h for h in holdout if h]
    bad = [h for h in holdout if h not in FAMILIES]
    if bad:
        raise UsageError(f"unknown defect famil{'y' if len(bad) == 1 else 'ies'} {', '.join(bad)}; "
                         f"choose from {', '.join(FAMILIES)}")
    if difficulty not in SEVERITY:
        raise UsageError(f"difficulty must be one of {', '.join(SEVERITY)}")
    if len(ratios) != 3 or min(ratios) < 0 or abs(sum(ratios) - 1) > 1e-6:
        raise UsageError(f"split ratios must be three non-negative numbers summing to 1, got {ratios}")
    if min(products, items_per_class, photos_per_item) < 1 or size < 64:
        raise UsageError("products, items-per-class and photos-per-item must be >= 1, size >= 64")
    if not 0.0 <= capture <= 1.0:
        raise UsageError(f"capture strength must be within 0..1, got {capture}")
    _prepare_out(out, force)   # only after every argument is valid: a typo must not delete the previous SynthPack
    plans = plan(products, items_per_class, photos_per_item, size, difficulty, holdout, list(ratios), seed, capture,
                 twins)
    workers = workers or os.cpu_count() or 1
    t0 = time.perf_counter()
    rows: list[dict] = []
    tasks = [(q, str(out)) for q in plans]
    bar = _progress(sum(q.photos * (1 + q.twin) for q in plans), progress)
    if workers == 1:
        for t in tasks:
            rows += (r := _render_star(t))
            bar(len(r))
    else:
        with ProcessPoolExecutor(workers) as ex:
            for r in ex.map(_render_star, tasks, chunksize=2):
                rows += r
                bar(len(r))
    secs = time.perf_counter() - t0
    templates = {}
    for p in range(products):  # each product's flat genuine print, at the photos' scale: its "artwork"
        slug = _design(seed, p).slug
        (out / slug).mkdir(parents=True, exist_ok=True)
        write_template(seed, p, size, out / slug / TEMPLATE)
        templates[slug] = f"{slug}/{TEMPLATE}"
    write_manifest(out / MANIFEST, rows, ITEM_COLUMNS + CAPTURE_COLUMNS)
    info = {"synthpack_version": VERSION, "products": products, "items_per_class": items_per_class,
            "photos_per_item": photos_per_item, "size": size, "difficulty": difficulty,
            "holdout_defects": holdout, "splits": list(ratios), "seed": seed, "capture_strength": capture,
            **({"twins": True} if twins else {}),
            "families": list(FAMILIES),
            "photos": len(rows), "product_names": sorted({r["product"] for r in rows}),
            "templates": dict(sorted(templates.items()))}
    write_text(out / "synthpack.json", json.dumps(info, indent=2) + "\n")
    return {**info, "seconds": secs, "photos_per_second": len(rows) / max(secs, 1e-9)}


def _progress(total: int, enabled: bool):
    done = [0]
    t0 = time.perf_counter()

    def step(n: int):
        done[0] += n
        if enabled and sys.stderr.isatty() or enabled and done[0] == total:
            rate = done[0] / max(time.perf_counter() - t0, 1e-9)
            eta = (total - done[0]) / max(rate, 1e-9)
            print(f"\rsynth {done[0]}/{total} photos  {rate:.1f}/s  ETA {eta:.0f}s", end="" if done[0] < total else "\n",
                  file=sys.stderr, flush=True)
    return step


def main(args) -> int:
    try:
        ratios = [float(x) for x in args.splits.split(",")]
        info = generate(args.out, args.products, args.items_per_class, args.photos_per_item, args.size,
                        args.difficulty, [h.strip() for h in args.holdout_defects.split(",")], ratios,
                        args.seed, args.workers, args.force, capture=args.capture_strength,
                        twins=args.twins)
    except ValueError as e:
        print(f"genuine synth: {e}", file=sys.stderr)
        return 2
    print(f"SynthPack: {info['photos']} photos of {info['products']} products "
          f"({info['difficulty']}, {info['photos_per_second']:.1f} photos/s)")
    print(f"Results saved to {args.out} (manifest.csv, synthpack.json, <product>/{TEMPLATE})")
    if args.contact_sheet:
        from .contact import contact_sheet

        contact_sheet(args.contact_sheet, seed=args.seed, difficulty=args.difficulty)
        print(f"Contact sheet saved to {args.contact_sheet}")
    print(f"Next: genuine data check {args.out}")
    return 0
