"""How far apart the page's face and Python's face end up after ECC refinement, per ECC setting (issue 25).

    python bench/page_ecc.py MODEL.onnx TEMPLATES PHOTOS... [--settings none,512,768,1024,256>512,512>1024]
    python bench/page_ecc.py checkpoints/synthpack/model.onnx runs/refs-all.db @runs/test-all.txt

The page has no SIFT: it starts from an ORB homography (ORB as `genuine page build` describes templates, a
brute-force matcher standing in for the page's LSH index) where Python starts from SIFT; both refine by ECC
(infer.rectify.refine). For each photo Python rectifies, both starts are refined with each setting (a template side,
or several in turn), both faces go through the comparator, and the distance between their corners (% of the
package's width) and between their p(counterfeit) are reported with the refinement's time. One thread.
"""
from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

sys.path.insert(0, str(Path(__file__).resolve().parent))
from page import photos_of  # noqa: E402


def orb_start(rgb, t, tk):
    """The page's start: ORB keypoints of the photo (at MATCH_SIDE, enlarged when smaller) matched to the
    template's, ratio test, MAGSAC; template px -> photo px, or None."""
    from genuine.infer.orb import MAGSAC_PX, ORB, RATIO, orb_keypoints
    from genuine.infer.rectify import MATCH_SIDE
    tp, td = tk
    pp, pd = orb_keypoints(rgb, ORB["nfeatures"], MATCH_SIDE)
    if len(pp) < 4:
        return None
    m = cv2.BFMatcher(cv2.NORM_HAMMING).knnMatch(pd, td, k=2)
    good = [a for a, b in (x for x in m if len(x) == 2) if a.distance < RATIO * b.distance]
    if len(good) < 4:
        return None
    s = MATCH_SIDE / max(rgb.shape[:2])   # MAGSAC's threshold is in matching-scale pixels
    H, _ = cv2.findHomography(tp[[g.trainIdx for g in good]], pp[[g.queryIdx for g in good]], cv2.USAC_MAGSAC,
                              MAGSAC_PX / s)
    return H


def main(argv=None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("templates")
    ap.add_argument("photos", nargs="+")
    ap.add_argument("--settings", default="none,512,768,1024,256>512,512>1024",
                    help="comma-separated; each a template side or sides in turn joined by '>', or 'none'")
    args = ap.parse_args(argv)
    cv2.setNumThreads(1)
    import genuine.infer.rectify as R
    from genuine.infer.inspector import Inspector
    from genuine.infer.model_input import face_input
    from genuine.infer.orb import ORB, orb_keypoints
    from genuine.infer.keypoints import KP_SIDE

    insp = Inspector(args.model, templates=args.templates)
    refine_was, R.REFINE = R.REFINE, False   # the keypoint starts, unrefined
    tk, pairs = {}, []
    for f in photos_of(args.photos):
        rgb = np.asarray(Image.open(f).convert("RGB"))
        r = R.rectify(rgb, insp.templates, with_face=False)
        if not r.ok:
            continue
        t = r.template
        if t.key not in tk:
            tk[t.key] = orb_keypoints(t.image, 2 * ORB["nfeatures"], KP_SIDE)
        H = orb_start(rgb, t, tk[t.key])
        if H is not None:
            pairs.append((rgb, r.H, H, t))
    R.REFINE = refine_was
    print(f"{len(pairs)} photos with both starts")

    def corners_apart(Ha, Hb, t):
        c = R.frame_corners(*t.size)[None]
        a, b = cv2.perspectiveTransform(c, Ha)[0], cv2.perspectiveTransform(c, Hb)[0]
        return float(np.max(np.linalg.norm(a - b, axis=1)) / np.linalg.norm(a[1] - a[0]) * 100)

    def p_of(rgb, H, t):
        x = face_input(R.warp_face(rgb, H, t), insp.model.face_size)
        return float(insp.model.compare(x[None], insp.judge.template_input(t)[None])["p_counterfeit"][0])

    print("| ECC refinement | corners apart median / p90 / max | p apart median / p90 / max | ms per refinement |")
    for setting in args.settings.split(","):
        sides = [] if setting == "none" else [int(x) for x in setting.split(">")]
        ce, dp, secs = [], [], 0.0
        for rgb, a, b, t in pairs:
            t0 = time.perf_counter()
            out = []
            for H in (a, b):
                for side in sides:
                    H2, moved = R.refine(rgb, H, t, side)
                    if moved >= 0:
                        H = H2
                out.append(H)
            secs += time.perf_counter() - t0
            ce.append(corners_apart(out[0], out[1], t))
            dp.append(abs(p_of(rgb, out[0], t) - p_of(rgb, out[1], t)))
        c, d = np.percentile(ce, [50, 90, 100]), np.percentile(dp, [50, 90, 100])
        print(f"| {setting} | {c[0]:.3f}% / {c[1]:.2f}% / {c[2]:.1f}% | {d[0]:.4f} / {d[1]:.3f} / {d[2]:.2f} | "
              f"{1000 * secs / 2 / len(pairs):.0f} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
