"""Benchmark: what the shared ORB start (infer/orb.py) costs Python's alignment. The inspector's own rectify() on
SynthPack photos, where the generator says the face is, with ECC's start from SIFT's fit (GENUINE_START=sift, the
inspector before session 15) and from the page's ORB fit (the default): the corner error after ECC and before it,
how often each start is used, and the seconds per photo.

    python bench/start.py datasets/synthpack [--split all] [--every 1] [--json out.json]

Corner error: the mean distance of the four corners from where the generator put the artwork, in % of the face's
width (bench/rectify.py expected_corners), on the photo's own product (declared: identification is not measured here;
both starts name products by SIFT).
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from pathlib import Path

import cv2
import numpy as np

from bench.rectify import expected_corners
from genuine.infer import rectify
from genuine.infer.photo import load_photo_scaled
from genuine.infer.templates import load_templates


def measure(root: Path, rows: list[dict], ts, info: dict, orb_start: bool, refine: bool) -> dict:
    from genuine.train.synthpack.geometry import photo_corners

    rectify.ORB_START, rectify.REFINE = orb_start, refine
    errs, secs, starts, failed = [], [], {}, 0
    for r in rows:
        img, (fx, fy) = load_photo_scaled(root / r["path"], min_side=rectify.SHARP_DECODE)
        rgb = np.asarray(img)
        t0 = time.perf_counter()
        out = rectify.rectify(rgb, ts, product=r["product"], with_face=False)
        secs.append(time.perf_counter() - t0)
        if not out.ok:
            failed += 1
            continue
        starts[out.start] = starts.get(out.start, 0) + 1
        H = rectify.pixel_scaling(fx, fy) @ out.H
        corners = cv2.perspectiveTransform(rectify.frame_corners(*out.template.size)[None], H)[0]
        true = expected_corners(photo_corners(info, r), out.template.size, r)
        errs.append(100 * float(np.linalg.norm(corners - true, axis=1).mean() / np.linalg.norm(true[1] - true[0])))
    e = np.array(errs)
    return {"start": "orb" if orb_start else "sift", "ecc": refine, "photos": len(rows), "aligned": len(errs),
            "failed": failed, "starts": starts, "corner_error_pct": e.tolist(),
            "median": float(np.median(e)), "p90": float(np.percentile(e, 90)), "p99": float(np.percentile(e, 99)),
            "max": float(e.max()), "over_1pct": int((e > 1).sum()), "ms_median": 1000 * float(np.median(secs))}


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("root")
    ap.add_argument("--split", default="all")
    ap.add_argument("--every", type=int, default=1)
    ap.add_argument("--json")
    args = ap.parse_args(argv)
    root = Path(args.root)
    info = json.loads((root / "synthpack.json").read_text())
    with open(root / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if args.split in ("all", r["split"])][::args.every]
    ts = load_templates(root)
    cv2.setNumThreads(1)
    out = [measure(root, rows, ts, info, o, e) for e in (True, False) for o in (False, True)]
    print(f"{len(rows)} photos of {root} ({args.split}); corner error after rectify(), % of the face's width")
    print("| ECC | start | aligned | median | p90 | p99 | max | > 1% | ms per photo | starts used |")
    print("|---|---|---|---|---|---|---|---|---|---|")
    for o in out:
        print(f"| {'yes' if o['ecc'] else 'no'} | {o['start']} | {o['aligned']}/{o['photos']} | {o['median']:.3f} | "
              f"{o['p90']:.3f} | {o['p99']:.3f} | {o['max']:.2f} | {o['over_1pct']} | {o['ms_median']:.0f} | "
              f"{o['starts']} |")
    a, b = np.array(out[0]["corner_error_pct"]), np.array(out[1]["corner_error_pct"])
    if len(a) == len(b):
        d = b - a
        rng = np.random.default_rng(0)
        boot = [np.median(rng.choice(d, len(d))) for _ in range(1000)]
        print(f"after ECC, ORB start minus SIFT start, per photo: median {np.median(d):+.4f} points "
              f"(95% bootstrap {np.percentile(boot, 2.5):+.4f} .. {np.percentile(boot, 97.5):+.4f}); "
              f"ORB start better on {(d < 0).sum()}, worse on {(d > 0).sum()}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=1))
        print(f"Results saved to {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
