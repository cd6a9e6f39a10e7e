"""The real-photo benchmark: product identification and false alarms on real shop photos (grocery-packages).

    python -m bench.grocery ../shared/data/grocery-packages [--views 10] [--json out.json]
    python -m bench.grocery ../shared/data/grocery-packages --model checkpoints/synthpack/model.onnx --genuine 10

Through the tool's own store and rectification, as a brand trainer and an officer use them: a reference store per
case (each product's catalogue image as its template; `--views N` of its train photos as identification views,
`genuine references add --views`; or both), then every val photo rectified against all 31 products
(infer.rectify.rectify_photo, the inspector's path). Counted: right product, wrong product, refused (by reason),
and inspectable (a face aligned to the right product's template). The plain matcher (most RANSAC inliers over
every catalogue image) is run on the same photos for the ratio. Time: identification of 12 MP JPEGs (val photos
upscaled, quality 95, 3-5 MB) with the catalogue-plus-views store, against a full decode of the same file.
--model also adds N genuine train photos per product to the store (`--genuine-photos`) and inspects the val
photos: the verdicts on real genuine units (every one is genuine: SUSPECT is a false alarm).
"""
from __future__ import annotations

import argparse
import io
import json
import statistics
import tempfile
import time
from collections import Counter
from pathlib import Path

import cv2
import numpy as np
from PIL import Image

from bench.rectify import naive   # the textbook matcher: most RANSAC inliers (>= 15) over every template
from genuine.infer.keypoints import TemplateSet
from genuine.infer.photo import load_photo
from genuine.infer.rectify import rectify, rectify_photo
from genuine.infer.references import ReferenceDB
from genuine.infer.template_photos import views_from_photos
from genuine.infer.templates import template_from_file


def _pct(n: int, d: int) -> str:
    return f"{n}/{d} ({100 * n / max(d, 1):.0f}%)"


def build_store(root: Path, db: Path, catalogue: bool, views: int) -> ReferenceDB:
    store = ReferenceDB(db, create=True)
    for folder in sorted((root / "photos" / "train").glob("*/*/")):
        p = folder.name
        faces = [template_from_file(root / "iconic" / f"{p}.jpg", p)] if catalogue else []
        for t in faces:
            store.add_template(p, t, t.source, "artwork")
        if views:
            photos = sorted(folder.glob("*.jpg"))
            pick = [photos[i] for i in np.linspace(0, len(photos) - 1, min(views, len(photos))).round().astype(int)]
            for v in views_from_photos(p, pick, faces)[0]:
                store.add_template(p, v, v.source, "view")
    return store


def identify(photos: list[Path], ts: TemplateSet) -> dict:
    right = wrong = inspectable = 0
    codes, secs = Counter(), []
    for f in photos:
        r = rectify(load_photo(f), ts, with_face=False)
        secs.append(r.seconds)
        right += r.identified == f.parent.name
        wrong += r.identified not in (None, f.parent.name)
        inspectable += r.ok and r.product == f.parent.name
        codes[r.reason_code or "ok"] += 1
    n = len(photos)
    return {"photos": n, "templates": sum(not t.view for t in ts.templates), "views": sum(t.view for t in ts.templates),
            "right": right, "wrong": wrong, "refused": n - right - wrong, "inspectable": inspectable,
            "reasons": dict(codes), "seconds_median": statistics.median(secs)}


def speed(photos: list[Path], ts: TemplateSet, n: int = 12) -> dict:
    """12 MP JPEGs made from val photos: identification (rectify_photo: DCT-scaled decode + rectify) vs full decode."""
    ours, full, sizes = [], [], []
    for f in photos[::max(1, len(photos) // n)][:n]:
        buf = io.BytesIO()
        big = Image.open(f).convert("RGB").resize((4032, 3024), Image.Resampling.BICUBIC)
        noise = np.random.default_rng(0).normal(0, 6, (3024, 4032, 3))   # sensor noise: phone-sized files
        Image.fromarray(np.clip(np.asarray(big) + noise, 0, 255).astype(np.uint8)).save(buf, "JPEG", quality=95)
        data = buf.getvalue()
        sizes.append(len(data))
        t0 = time.perf_counter()
        np.asarray(load_photo(data))
        full.append(time.perf_counter() - t0)
        t0 = time.perf_counter()
        rectify_photo(data, ts, (320, 208))
        ours.append(time.perf_counter() - t0)
    return {"photos": len(ours), "mb_median": statistics.median(sizes) / 1e6,
            "identify_ms_median": 1000 * statistics.median(ours), "full_decode_ms_median": 1000 * statistics.median(full),
            "ratio_to_full_decode": statistics.median(ours) / statistics.median(full)}


def verdicts(root: Path, db: Path, model: str, genuine: int, photos: list[Path]) -> dict:
    """N genuine train photos per product into the store, then the val photos inspected: all are genuine."""
    from genuine.infer.inspector import Inspector
    from genuine.infer.variation_store import add_genuine_photos

    store = ReferenceDB(db)
    for folder in sorted((root / "photos" / "train").glob("*/*/")):
        fs = sorted(folder.glob("*.jpg"))
        pick = [str(fs[i]) for i in np.linspace(0, len(fs) - 1, min(genuine, len(fs))).round().astype(int)]
        add_genuine_photos(store.conn, folder.name, pick)
    res = {"photos": len(photos)}
    for key, own in (("verdicts", True), ("verdicts_model_thresholds", False)):   # the lever on, then off
        insp = Inspector(model, templates=str(db), calibrate_products=own)
        out, reasons = Counter(), Counter()
        for f in photos:
            r = insp.inspect(f)
            aligned = (r.rectification or {}).get("ok")
            out[r.verdict if aligned else "not inspected"] += 1
            if r.verdict == "INCONCLUSIVE" and aligned:
                reasons[r.reason.split("(")[0].split(":")[0][:60]] += 1
        res[key], res[key + "_inconclusive_reasons"] = dict(out), dict(reasons.most_common(5))
    return res


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("data")
    ap.add_argument("--views", type=int, default=10, help="train photos per product stored as identification views")
    ap.add_argument("--model", help="a comparator .onnx: also inspect the val photos (false alarms on genuine units)")
    ap.add_argument("--genuine", type=int, default=10, help="--model: genuine train photos per product in the store")
    ap.add_argument("--no-plain", action="store_true", help="skip the plain matcher (slow: brute force)")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    cv2.setNumThreads(1)   # a handheld's core
    root = Path(args.data)
    photos = sorted((root / "photos" / "val").glob("*/*/*.jpg"))
    out = {"data": str(root), "val_photos": len(photos)}
    with tempfile.TemporaryDirectory() as tmp:
        for case, cat, views in (("catalogue", True, 0), ("views", False, args.views), ("catalogue+views", True, args.views)):
            db = Path(tmp) / f"{case}.db"
            ts = TemplateSet(build_store(root, db, cat, views).templates())
            out[case] = r = identify(photos, ts)
            print(f"{case:16s} right {_pct(r['right'], r['photos'])}  wrong {_pct(r['wrong'], r['photos'])}  refused "
                  f"{_pct(r['refused'], r['photos'])}  inspectable {_pct(r['inspectable'], r['photos'])}  "
                  f"{r['reasons']}  {1000 * r['seconds_median']:.0f} ms (348 px)")
        if not args.no_plain:
            ts = TemplateSet(build_store(root, Path(tmp) / "plain.db", True, 0).templates())
            named = [naive(np.asarray(load_photo(f)), ts)[0] for f in photos]
            right = sum(n == f.parent.name for n, f in zip(named, photos))
            wrong = sum(n not in (None, f.parent.name) for n, f in zip(named, photos))
            out["plain_catalogue"] = {"right": right, "wrong": wrong, "refused": len(photos) - right - wrong}
            print(f"plain matcher    right {_pct(right, len(photos))}  wrong {_pct(wrong, len(photos))} (catalogue)")
        ts = TemplateSet(ReferenceDB(Path(tmp) / "catalogue+views.db").templates())
        out["speed_12mp"] = s = speed(photos, ts)
        print(f"12 MP ({s['mb_median']:.1f} MB JPEG), 31 products, 1 thread: identification median "
              f"{s['identify_ms_median']:.0f} ms, full decode {s['full_decode_ms_median']:.0f} ms "
              f"(x{s['ratio_to_full_decode']:.2f} of a full decode)")
        if args.model:
            out["verdicts"] = v = verdicts(root, Path(tmp) / "catalogue+views.db", args.model, args.genuine, photos)
            print(f"verdicts on {v['photos']} real genuine val photos ({args.genuine} genuine train photos per product "
                  f"offered to the store): each product's own operating point {v['verdicts']} (inconclusive: "
                  f"{v['verdicts_inconclusive_reasons']}); the model's thresholds {v['verdicts_model_thresholds']}")
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
