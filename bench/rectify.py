"""Benchmark: rectification on SynthPack (success, product identification, corner error, time on one thread)
and on real grocery photos (identification from catalogue images, refusal of products with no template).

    python bench/rectify.py synth datasets/synthpack [--split test] [--match-side 512] [--loo] [--naive]
    python bench/rectify.py grocery ../shared/data/grocery-packages

synth: every photo of the split is matched against all of the dataset's templates (<product>/template.png).
Corner error is the distance between where rectification puts the template's corners and where the
generator put the package face (train.synthpack.geometry.photo_corners), in photo pixels and in % of the
face's width. --loo also removes each photo's own template: what is accepted then is a false identification.
grocery: the 31 catalogue images (iconic/) are the templates and the shop photos (photos/val, --split) the
queries; then each photo again without its product's template, where the only right answer is a refusal.
"""
from __future__ import annotations

import argparse
import csv
import json
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np

import genuine.infer.rectify as R
from genuine.infer.keypoints import describe
from genuine.infer.photo import load_photo
from genuine.infer.templates import load_templates


def _pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / max(d, 1):.1f}%)"


def expected_corners(die_cut: np.ndarray, size: tuple[int, int], row: dict) -> np.ndarray:
    """Where rectification should put the template's corners: it aligns the artwork, and a unit's artwork sits
    shifted by its print offset (print_dx, print_dy in 1/100 of the width) against the die cut that
    photo_corners() locates. PIL's pixel convention (centres at +0.5) becomes OpenCV's (centres at 0)."""
    w, h = size
    edge = np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)
    G = cv2.getPerspectiveTransform(edge, die_cut.astype(np.float32))   # face (die-cut frame) -> photo
    shift = np.array([float(row["print_dx"]), float(row["print_dy"])]) * w / 100
    return cv2.perspectiveTransform((edge + shift)[None].astype(np.float64), G.astype(np.float64))[0] - 0.5


def naive(img: np.ndarray, ts: R.TemplateSet) -> tuple[str | None, float]:
    """The textbook way, for the ratio: SIFT on the full-resolution photo, brute-force ratio-test matching against
    every template, RANSAC; the template with most inliers (at least 15) wins. (product, seconds)."""
    t0 = time.perf_counter()
    kp, desc = describe(img, max(img.shape[:2]))
    best, product = 0, None
    for t in ts.templates:
        pairs = cv2.BFMatcher(cv2.NORM_L2).knnMatch(desc, t.descriptors, k=2)
        good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < 0.75 * m[1].distance]
        if len(good) < 4:
            continue
        _, mask = cv2.findHomography(t.keypoints[[m.trainIdx for m in good]], kp[[m.queryIdx for m in good]],
                                     cv2.RANSAC, 3.0)
        n = int(mask.sum()) if mask is not None else 0
        if n > best:
            best, product = n, t.product
    return (product if best >= 15 else None), time.perf_counter() - t0


def synth(args) -> dict:
    from genuine.train.synthpack.geometry import photo_corners

    root = Path(args.data)
    info = json.loads((root / "synthpack.json").read_text())
    rows = [r for r in csv.DictReader(open(root / "manifest.csv")) if args.split in ("all", r["split"])][::args.every]
    ts = load_templates(root)
    ok = right = 0
    codes, errs, rel, secs, false_ok = Counter(), [], [], [], 0
    decode, warp, naive_secs, ours_secs, naive_right = [], [], [], [], 0
    for r in rows:
        t0 = time.perf_counter()
        img = np.asarray(load_photo(root / r["path"]))   # the full-resolution decode the face is warped from
        decode.append(time.perf_counter() - t0)
        res = R.rectify(img, ts, with_face=False, match_side=args.match_side)
        secs.append(res.seconds)
        if res.ok:
            t0 = time.perf_counter()
            R.warp_face(img, res.H, res.template)
            warp.append(time.perf_counter() - t0)
        codes[res.reason_code or "ok"] += 1
        ok += res.ok
        right += res.ok and res.product == r["product"]
        if res.ok and res.product == r["product"]:
            true = expected_corners(photo_corners(info, r), res.template.size, r)
            e = np.linalg.norm(res.corners - true, axis=1)
            errs.append(float(e.mean()))
            rel.append(float(e.mean() / np.linalg.norm(true[1] - true[0])))
        if args.naive:
            p, sec = naive(img, ts)
            naive_right += p == r["product"]
            naive_secs.append(sec)
            ours_secs.append(res.seconds)
        if args.loo:
            others = R.TemplateSet([t for t in ts.templates if t.product != r["product"]])
            false_ok += R.rectify(img, others, with_face=False, match_side=args.match_side).ok
    out = {"data": str(root), "split": args.split, "photos": len(rows), "size": info["size"],
           "difficulty": info["difficulty"], "match_side": args.match_side, "rectified": ok, "right_product": right,
           "refusals": dict(codes), "corner_error_px_median": float(np.median(errs)) if errs else None,
           "corner_error_px_p95": float(np.percentile(errs, 95)) if errs else None,
           "corner_error_pct_of_width_median": 100 * float(np.median(rel)) if rel else None,
           "seconds_median": float(np.median(secs)), "seconds_p95": float(np.percentile(secs, 95)),
           "decode_seconds_median": float(np.median(decode)),
           "face_warp_seconds_median": float(np.median(warp)) if warp else None}
    if args.loo:
        out["loo_false_accepts"] = false_ok
    if args.naive:
        out["naive"] = {"right_product": naive_right, "seconds_median": float(np.median(naive_secs)),
                        "speedup_median": float(np.median(naive_secs) / np.median(ours_secs))}
        print(f"  naive (full-resolution SIFT, brute force against every template, RANSAC): right product "
              f"{_pct(naive_right, len(rows))}, median {1000 * np.median(naive_secs):.0f} ms: genuine is "
              f"x{out['naive']['speedup_median']:.1f} faster")
    print(f"{root} ({info['size']} px, {info['difficulty']}, {args.split}): rectified {_pct(ok, len(rows))}, "
          f"right product {_pct(right, len(rows))}, refusals {dict(codes)}")
    if errs:
        print(f"  corner error: median {out['corner_error_px_median']:.2f} px "
              f"({out['corner_error_pct_of_width_median']:.2f}% of the face width), p95 {out['corner_error_px_p95']:.2f} px")
    print(f"  time per photo (1 thread): find the face median {1000 * out['seconds_median']:.0f} ms "
          f"(p95 {1000 * out['seconds_p95']:.0f} ms); full decode {1000 * out['decode_seconds_median']:.0f} ms and "
          f"face warp {1000 * (out['face_warp_seconds_median'] or 0):.0f} ms besides")
    if args.loo:
        print(f"  own template removed: accepted as another product {_pct(false_ok, len(rows))}")
    return out


def grocery(args) -> dict:
    root = Path(args.data)
    ts = load_templates(root / "iconic")
    if args.from_photos:   # the lever of a trainer without artwork: a median template of N train photos each
        from genuine.infer.template_photos import template_from_photos

        built = []
        for folder in sorted((root / "photos" / "train").glob("*/*/")):
            try:
                built.append(template_from_photos(folder.name, sorted(folder.glob("*.jpg"))[:args.from_photos])[0])
            except R.RectifyError as e:
                print(f"  no template for {folder.name}: {e}")
        ts = R.TemplateSet(built)
    photos = sorted((root / "photos" / args.split).glob("*/*/*.jpg"))[::args.every]
    right = wrong = refused = false_ok = closest = 0
    codes, secs = Counter(), []
    lim = {"min_agreement": args.min_agreement} if args.min_agreement is not None else None
    for f in photos:
        product = f.parent.name
        img = load_photo(f)
        res = R.rectify(img, ts, with_face=False, match_side=args.match_side, limits=lim)
        closest += bool(res.candidates) and res.candidates[0][0] == product
        secs.append(res.seconds)
        codes[res.reason_code or "ok"] += 1
        right += res.ok and res.product == product
        wrong += res.ok and res.product != product
        refused += not res.ok
        others = R.TemplateSet([t for t in ts.templates if t.product != product])
        false_ok += R.rectify(img, others, with_face=False, match_side=args.match_side, limits=lim).ok
    n = len(photos)
    out = {"data": str(root), "split": args.split, "photos": n, "templates": len(ts), "right": right, "wrong": wrong,
           "refused": refused, "refusals": dict(codes), "loo_false_accepts": false_ok, "closest_right": closest,
           "min_agreement": args.min_agreement if args.min_agreement is not None else R.LIMITS["min_agreement"],
           "seconds_median": float(np.median(secs))}
    print(f"grocery {args.split}: {n} photos, {len(ts)} {'photo-built' if args.from_photos else 'catalogue'} templates: right product {_pct(right, n)}, "
          f"wrong product {_pct(wrong, n)}, refused {_pct(refused, n)} {dict(codes)}")
    print(f"  accuracy when it answers {_pct(right, right + wrong)}; the template with most inliers is the right "
          f"product for {_pct(closest, n)} (31 products: chance 3%)")
    print(f"  own template removed: accepted as another product {_pct(false_ok, n)} (the rest refused)")
    print(f"  time per photo (1 thread): median {1000 * out['seconds_median']:.0f} ms")
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("what", choices=["synth", "grocery"])
    ap.add_argument("data")
    ap.add_argument("--split", default=None, help="synth: test (default) or all (rectification learns nothing from any split); "
                                                  "grocery: val (default)")
    ap.add_argument("--every", type=int, default=1, help="take every Nth photo (quick runs)")
    ap.add_argument("--match-side", type=int, default=R.MATCH_SIDE, help="long side of the photo's matching copy")
    ap.add_argument("--naive", action="store_true", help="synth: also time the textbook way on the same photos")
    ap.add_argument("--loo", action="store_true", help="synth: also match without each photo's own template")
    ap.add_argument("--from-photos", type=int, default=0, metavar="N",
                    help="grocery: templates built from N train photos per product instead of the catalogue images")
    ap.add_argument("--min-agreement", type=float, help="override rectify's whole-face agreement floor (a curve)")
    ap.add_argument("--shortlist", type=int, help="products fitted geometrically per photo (default "
                                                  "genuine.infer.keypoints.SHORTLIST)")
    ap.add_argument("--json", metavar="FILE", help="also write the numbers as JSON")
    args = ap.parse_args()
    if args.shortlist:
        import genuine.infer.keypoints as keypoints

        keypoints.SHORTLIST = args.shortlist
    args.split = args.split or ("test" if args.what == "synth" else "val")
    cv2.setNumThreads(1)   # a handheld's core; the scan parallelises across photos instead
    t0 = time.perf_counter()
    out = (synth if args.what == "synth" else grocery)(args)
    out["wall_seconds"] = time.perf_counter() - t0
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
