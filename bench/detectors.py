"""Benchmark: which keypoint detector can the phone page rectify with? SIFT (what Python uses) against the ones
OpenCV.js builds carry (AKAZE, ORB: no npm OpenCV build has SIFT), on the same SynthPack photos and templates.

    python bench/detectors.py datasets/synthpack-1600 [--split test] [--every 1] [--side 512] [--features 3000] [--ecc [--ecc-side 512]]
    python bench/detectors.py ../shared/data/grocery-packages     # real shop photos against catalogue images

Each photo, shrunk to --side as the inspector does (infer/rectify.py MATCH_SIDE), is matched against every
product's template (described at infer.keypoints.KP_SIDE) by brute force with Lowe's ratio test, and a homography
is fitted by MAGSAC (USAC_MAGSAC, which OpenCV.js 4.12 has). The product with most inliers (at least 15) is the
one named; for the photo's own product the corner error against where the generator put the face is measured (in
% of the face's width, so sizes compare). Times are one thread: detection on the photo, then matching and fitting
against all templates. SIFT here is plain OpenCV SIFT with RootSIFT descriptors, as infer.keypoints computes them;
this is not the inspector's full identification (distinctive keypoints, FLANN), only the detector's share of it.
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
from genuine.infer.keypoints import KP_SIDE, MAX_FEATURES, pixel_scaling, root_sift, shrink
from genuine.infer.photo import load_photo
from genuine.infer.rectify import frame_corners
from genuine.infer.templates import load_templates

MIN_INLIERS = 15
ECC_SIDE = 512     # template side ECC refines at (--ecc-side)
RATIO = 0.75


def detector(name: str, features: int):
    if name == "sift":
        return cv2.SIFT_create(nfeatures=features), cv2.NORM_L2
    if name == "akaze":   # no feature cap in OpenCV's AKAZE: its threshold sets how many
        if not hasattr(cv2, "AKAZE_create"):   # OpenCV 5 moved AKAZE out of the main modules
            raise ValueError(f"this OpenCV ({cv2.__version__}) has no AKAZE")
        return cv2.AKAZE_create(), cv2.NORM_HAMMING
    if name == "orb":
        return cv2.ORB_create(nfeatures=features, scaleFactor=1.2, nlevels=8, fastThreshold=10), cv2.NORM_HAMMING
    raise ValueError(name)


def describe(det, name: str, rgb: np.ndarray, side: int) -> tuple[np.ndarray, np.ndarray, float]:
    small, s = shrink(rgb, side)
    kps, desc = det.detectAndCompute(cv2.cvtColor(small, cv2.COLOR_RGB2GRAY), None)
    if desc is None:
        return np.zeros((0, 2), np.float32), np.zeros((0, 32), np.uint8), s
    if name == "sift":
        desc = root_sift(desc)
    return np.array([k.pt for k in kps], np.float32), desc, s


def fit(kp_t, d_t, kp_p, d_p, norm) -> tuple[np.ndarray | None, int]:
    if len(d_t) < 2 or len(d_p) < 2:
        return None, 0
    pairs = cv2.BFMatcher(norm).knnMatch(d_p, d_t, k=2)
    good = [m[0] for m in pairs if len(m) == 2 and m[0].distance < RATIO * m[1].distance]
    if len(good) < 4:
        return None, 0
    H, mask = cv2.findHomography(kp_t[[m.trainIdx for m in good]], kp_p[[m.queryIdx for m in good]],
                                 cv2.USAC_MAGSAC, 3.0)
    return (H, int(mask.sum())) if H is not None and mask is not None else (None, 0)


def refine_ecc(img: np.ndarray, t, full: np.ndarray, side: int = ECC_SIDE) -> np.ndarray:
    """The homography (template pixels -> photo pixels) refined by ECC (findTransformECC, MOTION_HOMOGRAPHY: OpenCV.js
    has it) between the template and the photo warped onto it, both at `side`; the input where ECC fails."""
    k = side / max(t.size)
    small, s = shrink(img, side * 2)
    T, P = pixel_scaling(k), pixel_scaling(s)
    A = P @ full @ np.linalg.inv(T)                     # template-work -> photo-small
    w, h = round(t.size[0] * k), round(t.size[1] * k)
    grey = lambda x: cv2.cvtColor(x, cv2.COLOR_RGB2GRAY).astype(np.float32) / 255   # noqa: E731
    warped = cv2.warpPerspective(small, A, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP)
    tw = cv2.resize(t.image, (w, h), interpolation=cv2.INTER_AREA)
    W = np.eye(3, dtype=np.float32)
    try:
        _, W = cv2.findTransformECC(grey(tw), grey(warped), W, cv2.MOTION_HOMOGRAPHY,
                                    (cv2.TERM_CRITERIA_EPS | cv2.TERM_CRITERIA_COUNT, 50, 1e-5), None, 5)
    except cv2.error:
        return full
    return np.linalg.inv(P) @ A @ W.astype(np.float64) @ T


def run(name: str, root: Path, rows: list[dict], ts, info: dict, side: int, features: int, ecc: bool = False,
        ecc_side: int = ECC_SIDE) -> dict:
    from genuine.train.synthpack.geometry import photo_corners

    det, norm = detector(name, features)
    temps = {}
    for t in ts.templates:
        if not t.view:
            kp, d, s = describe(det, name, t.image, KP_SIDE)
            temps[t.product] = (kp, d, t, s)
    right, aligned, errs, t_det, t_match, n_kp, t_ecc = 0, 0, [], [], [], [], []
    for r in rows:
        img = np.asarray(load_photo(root / r["path"]))
        t0 = time.perf_counter()
        kp, d, s = describe(det, name, img, side)
        t1 = time.perf_counter()
        fits = {p: fit(kt, dt, kp, d, norm) for p, (kt, dt, _, _) in temps.items()}
        t_det.append(t1 - t0)
        t_match.append(time.perf_counter() - t1)
        n_kp.append(len(kp))
        best = max(fits, key=lambda p: fits[p][1])
        right += fits[best][1] >= MIN_INLIERS and best == r["product"]
        H, n = fits[r["product"]]
        if H is None or n < MIN_INLIERS:
            continue
        t, st = temps[r["product"]][2:]
        w, h = t.size
        full = np.linalg.inv(pixel_scaling(s)) @ H @ pixel_scaling(st)    # template pixels -> photo pixels
        if ecc:
            t2 = time.perf_counter()
            full = refine_ecc(img, t, full, ecc_side)
            t_ecc.append(time.perf_counter() - t2)
        corners = cv2.perspectiveTransform(frame_corners(w, h)[None], full)[0]
        true = expected_corners(photo_corners(info, r), t.size, r)
        e = float(np.linalg.norm(corners - true, axis=1).mean() / np.linalg.norm(true[1] - true[0]))
        errs.append(100 * e)
        aligned += e < 0.02
    n = len(rows)
    return {"detector": name, "photos": n, "right_product": right, "aligned_own_template": aligned,
            "corner_error_pct_median": float(np.median(errs)) if errs else None,
            "corner_error_pct_p95": float(np.percentile(errs, 95)) if errs else None,
            "keypoints_median": float(np.median(n_kp)), "detect_ms_median": 1000 * float(np.median(t_det)),
            "match_fit_ms_median": 1000 * float(np.median(t_match)),
            "ecc_ms_median": 1000 * float(np.median(t_ecc)) if t_ecc else None}


def grocery(name: str, root: Path, side: int, features: int) -> dict:
    """Real shop photos (grocery-packages val) against the 31 catalogue images: named right / wrong / refused."""
    det, norm = detector(name, features)
    temps = {}
    for f in sorted((root / "iconic").glob("*.jpg")):
        kp, d, _ = describe(det, name, np.asarray(load_photo(f)), KP_SIDE)
        temps[f.stem] = (kp, d)
    right = wrong = 0
    photos = sorted((root / "photos" / "val").glob("*/*/*.jpg"))
    for f in photos:
        kp, d, _ = describe(det, name, np.asarray(load_photo(f)), side)
        n = sorted(((fit(kt, dt, kp, d, norm)[1], p) for p, (kt, dt) in temps.items()), reverse=True)
        if n[0][0] >= MIN_INLIERS and n[0][0] >= 1.5 * n[1][0]:    # named: enough inliers, well ahead
            right += n[0][1] == f.parent.name
            wrong += n[0][1] != f.parent.name
    return {"photos": len(photos), "right": right, "wrong": wrong}


def main(args) -> None:
    cv2.setNumThreads(1)
    root = Path(args.data)
    if (root / "iconic").is_dir():
        for name in args.detectors.split(","):
            try:
                o = grocery(name, root, args.side, args.features)
            except ValueError as e:
                print(f"{name}: not measured: {e}")
                continue
            print(f"{name}: of {o['photos']} shop photos named right {o['right']}, wrong {o['wrong']} "
                  f"(catalogue images only; >= {MIN_INLIERS} inliers and 1.5x the runner-up)", flush=True)
        return
    info = json.loads((root / "synthpack.json").read_text())
    with open(root / "manifest.csv", newline="") as f:
        rows = [r for r in csv.DictReader(f) if args.split in ("all", r["split"])][::args.every]
    ts = load_templates(root)
    print("| detector | right product of 8 | own template aligned (< 2% of width) | corner error median / p95, % of "
          "width | keypoints per photo | detect ms | match + MAGSAC ms, 8 templates |")
    print("| --- | --- | --- | --- | --- | --- | --- |")
    for name in args.detectors.split(","):
        try:
            o = run(name, root, rows, ts, info, args.side, args.features, args.ecc, args.ecc_side)
        except ValueError as e:
            print(f"| {name} | not measured: {e} |")
            continue
        med, p95 = o["corner_error_pct_median"], o["corner_error_pct_p95"]
        print(f"| {name} | {o['right_product']} / {o['photos']} | {o['aligned_own_template']} / {o['photos']} | "
              f"{med:.2f} / {p95:.2f} | {o['keypoints_median']:.0f} | {o['detect_ms_median']:.0f} | "
              f"{o['match_fit_ms_median']:.0f} |" + (f" ECC {o['ecc_ms_median']:.0f} ms |" if args.ecc else "") if med is not None else f"| {name} | {o} |", flush=True)


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--split", default="test")
    ap.add_argument("--every", type=int, default=1, help="every Nth photo of the split")
    ap.add_argument("--side", type=int, default=512, help="photo long side matched (default 512, the inspector's)")
    ap.add_argument("--detectors", default="sift,akaze,orb")
    ap.add_argument("--ecc", action="store_true", help="refine each homography by ECC between template and face")
    ap.add_argument("--ecc-side", type=int, default=ECC_SIDE, help=f"template side ECC works at (default {ECC_SIDE})")
    ap.add_argument("--features", type=int, default=MAX_FEATURES,
                    help=f"keypoints kept per image, templates and photos (default {MAX_FEATURES}, the inspector's)")
    main(ap.parse_args())
