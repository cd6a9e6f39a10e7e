"""Benchmark: the zone checks (barcode, text, colour) on SynthPack photos, standalone: what each zone reads,
catches per defect family, and fires on genuine photos; and what each costs.

    python bench/zones.py datasets/synthpack-1600 [--split test] [--genuine 10] [--limit 0] [--budget 2]

Each template learns its zones; each product's genuine train photos (up to --genuine) give the inks their
tolerance; every photo of --split is rectified with its sharp face (rectify_photo(sharp_side=SHARP_SIDE)) and
checked; --budget: text lines recognised per photo (0: every line, as before the screen). A family's "caught" counts counterfeit photos with at least one zone failing; "false" counts genuine
photos with one.
"""
from __future__ import annotations

import argparse
import time
from collections import Counter, defaultdict
from pathlib import Path

import numpy as np

from genuine.infer import zones as Z
from genuine.infer.ocr import Ocr
from genuine.infer.rectify import rectify_photo
from genuine.infer.templates import load_templates
from genuine.train.layout import MANIFEST, read_manifest

FACE = (320, 208)


def _sharp(path, ts, product):
    r, _ = rectify_photo(path, ts, FACE, product=product, sharp_side=Z.SHARP_SIDE)
    return r.sharp if r.ok else None


def learn_all(root: Path, rows: list[dict], ts, n_genuine: int, ocr) -> dict:
    zones = {}
    for t in ts.templates:
        t0 = time.perf_counter()
        z = Z.learn(t.image, ocr)
        faces = [_sharp(root / r["path"], ts, t.product) for r in rows
                 if r["product"] == t.product and r["split"] == "train" and r["label"] == "genuine"][:n_genuine]
        zones[t.product] = Z.refine(z, faces)
        print(f"{t.product}: barcode {'yes' if z['barcode'] else 'no'}, {len((z['text'] or {}).get('lines', []))} "
              f"text lines, {len((z['colour'] or {}).get('inks', []))} inks, {sum(f is not None for f in faces)} "
              f"genuine faces ({time.perf_counter() - t0:.1f} s)")
    return zones


def main(args) -> None:
    Z.zone_text.READ_LINES = args.budget or None   # zone_text.check's default budget
    root = Path(args.data)
    rows = read_manifest(root / MANIFEST)
    ts = load_templates(root)
    ocr = Ocr.installed()
    print(f"OCR: {ocr.name if ocr else 'none installed'}")
    zones = learn_all(root, rows, ts, args.genuine, ocr)
    test = [r for r in rows if r["split"] == args.split][: args.limit or None]
    tally, secs, states, examples = defaultdict(Counter), defaultdict(list), defaultdict(Counter), {}
    for r in test:
        t0 = time.perf_counter()
        face = _sharp(root / r["path"], ts, r["product"])
        secs["rectify+sharp"].append(time.perf_counter() - t0)
        fam = r["defect"] or "genuine"
        tally[fam]["photos"] += 1
        if face is None:
            tally[fam]["not rectified"] += 1
            continue
        found = []
        for zname in Z.ZONES:
            t0 = time.perf_counter()
            f = Z.check(face, {"version": Z.ZONES_VERSION, zname: zones[r["product"]][zname]}, ocr)
            secs[zname].append(time.perf_counter() - t0)
            found += f
        for f in found:
            states[(fam, f.zone)][f.state] += 1
            if f.state == "fail":
                examples.setdefault((fam, f.zone), f"{Path(r['path']).name}: {f.message}")
        tally[fam]["caught" if fam != "genuine" else "false"] += any(f.state == "fail" for f in found)
    _report(tally, states, secs, examples)


def _report(tally, states, secs, examples) -> None:
    print("\n| family | photos | rectified | any zone fails | barcode fail/read | text fail/read | colour fail/read |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for fam in sorted(tally, key=lambda f: (f == "genuine", f)):
        t = tally[fam]
        cells = []
        for z in Z.ZONES:
            s = states[(fam, z)]
            cells.append(f"{s['fail']}/{s['fail'] + s['pass']}")
        n_ok = t["photos"] - t["not rectified"]
        print(f"| {fam} | {t['photos']} | {n_ok} | {t['caught'] + t['false']} | " + " | ".join(cells) + " |")
    print("\nmedian seconds per photo: " + ", ".join(f"{k} {np.median(v) * 1000:.0f} ms" for k, v in secs.items()))
    for (fam, z), msg in sorted(examples.items()):
        print(f"  {fam} / {z}: {msg}")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--split", default="test")
    ap.add_argument("--genuine", type=int, default=10)
    ap.add_argument("--limit", type=int, default=0)
    ap.add_argument("--budget", type=int, default=Z.zone_text.READ_LINES,
                    help="text lines recognised per photo, the least like the artwork (0: all)")
    main(ap.parse_args())
