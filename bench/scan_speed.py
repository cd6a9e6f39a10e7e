"""Benchmark: `genuine scan` throughput against a decode-only loop over the same 12 MP files, same run.

    python -m bench.scan_speed [--photos 24] [--workers 2] [--backbone mobilenet_v3_large] [--size 320]

decode-only: read + DCT-scaled decode + letterbox of the same files in the same process pool (what any
pipeline must do); the scan adds sha256, the quality gate, batched inference, records and flagged thumbnails. scan: the full pipeline, FP32 and INT8 models
(random weights: speed does not depend on them). Target: scan >= 85% of the decode-only rate.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import tempfile
import time
from multiprocessing import get_context
from pathlib import Path

import numpy as np

from bench.inspect_speed import build_models, phone_photos
from genuine.infer.inspector import Inspector
from genuine.infer.model_input import photo_input
from genuine.infer.photo import load_photo
from genuine.infer.scan import scan


def _decode_photo(path: str) -> tuple:
    """What any pipeline must do per photo: read it, decode it (DCT-scaled) and letterbox it."""
    x = photo_input(Path(path).read_bytes(), _SIZE).x
    return x.shape


_SIZE = 320


def decode_only(folder: Path, size: int, workers: int) -> float:
    global _SIZE
    _SIZE = size
    todo = sorted(str(p) for p in folder.iterdir())
    t0 = time.perf_counter()
    with get_context("fork").Pool(workers) as pool:
        n = sum(1 for _ in pool.imap_unordered(_decode_photo, todo, chunksize=4))
    return n / (time.perf_counter() - t0)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--photos", type=int, default=24)
    ap.add_argument("--workers", type=int, default=os.cpu_count())
    ap.add_argument("--backbone", default="mobilenet_v3_large")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--flag-none", action="store_true", help="thresholds that call every photo GENUINE (no heatmap "
                                                              "JPEGs), as in an archive of mostly genuine goods")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        src = tmp / "photos"
        src.mkdir()
        base = phone_photos(src, min(4, args.photos))
        # more distinct 12 MP files by re-encoding (distinct bytes: nothing is deduplicated away)
        for k in range(len(base), args.photos):
            img = load_photo(base[k % len(base)])
            img.save(src / f"phone{k}.jpg", quality=85 + k % 10, comment=f"copy {k}".encode())  # distinct bytes
        calib = [photo_input(p, args.size).x for p in base]
        models = build_models(tmp, args.backbone, args.size, calib * 4, flag_all=not args.flag_none)
        res = {"machine": f"{platform.machine()}, {os.cpu_count()} cores", "photos": args.photos, "workers": args.workers,
               "backbone": args.backbone, "size": args.size}
        res["decode_only_per_s"] = decode_only(src, args.size, args.workers)
        for kind in ("fp32", "int8"):
            run = tmp / f"run-{kind}"
            info = scan(Inspector(models[kind], threads=1), [str(src)], run, workers=args.workers, progress=False)
            res[f"scan_{kind}_per_s"] = info["new"] / info["seconds"]
            res[f"scan_{kind}_vs_decode_only"] = res[f"scan_{kind}_per_s"] / res["decode_only_per_s"]
            flagged = sum(1 for _ in (run / "thumbs").iterdir())
            res[f"scan_{kind}_flagged_share"] = flagged / args.photos  # each flagged photo also gets a heatmap JPEG
        res["decode_only_again_per_s"] = decode_only(src, args.size, args.workers)  # drift check
    print(json.dumps({k: (round(v, 3) if isinstance(v, float) else v) for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    np.seterr(all="ignore")
    main()
