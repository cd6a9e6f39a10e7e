"""Benchmark: `genuine scan --engine ray` against the local scan on the same photos, and the scaling model.

    python bench/scan_ray.py MODEL.onnx PHOTOS --templates refs.db [--actors 1] [--json out.json]

Times (wall, including Ray's start for the Ray run) the local scan with --workers = all cores and the Ray scan,
each into a fresh run folder, and checks that both give the same results.csv. Then measures, on one core, what each
stage costs per photo: a worker's read/decode/rectify/variation (scan_worker.decode) and the model with the verdict
(scan.score_batch, batches of 16). The scaling model: with C cores per node split as --engine ray splits them
(scan_ray.split_cpus: J = C // 3 model actors, D = C - J decode actors), photos/s = min(D / decode_s, J / judge_s)
per node, and nodes add up while the driver (journal appends, under 1 ms a photo) keeps pace.
"""
from __future__ import annotations

import argparse
import csv
import json
import os
import shutil
import tempfile
import time
from pathlib import Path

from genuine.cli import main as cli


def _rows(run: Path) -> list[dict]:
    with open(run / "results.csv", newline="") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: r["path"])


def _timed(argv: list[str]) -> float:
    t0 = time.perf_counter()
    assert cli(argv) == 0, argv
    return time.perf_counter() - t0


def _stage_costs(model: str, templates: str, photos: str, n: int) -> dict:
    """Seconds per photo of each stage on one core (one thread, in this process)."""
    import cv2

    from genuine.infer.inspector import Inspector
    from genuine.infer.scan_batch import listing, score_batch
    from genuine.infer.scan_worker import WorkerSetup, decode

    cv2.setNumThreads(1)
    insp = Inspector(model, threads=1, templates=templates)
    WorkerSetup.of(insp).start()
    todo = [e for e in listing([photos]) if e.key.lower().endswith((".jpg", ".jpeg", ".png"))][:n]
    t0 = time.perf_counter()
    items = [decode(e) for e in todo]
    t1 = time.perf_counter()
    for s in range(0, len(items), 16):
        score_batch(insp, items[s:s + 16])
    t2 = time.perf_counter()
    return {"photos": len(todo), "decode_s": (t1 - t0) / len(todo), "judge_s": (t2 - t1) / len(todo)}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("model")
    ap.add_argument("photos")
    ap.add_argument("--templates", required=True)
    ap.add_argument("--actors", type=int, default=0, help="Ray decode actors (default: CPUs - 1)")
    ap.add_argument("--stage-photos", type=int, default=48, help="photos timed per stage on one core")
    ap.add_argument("--json", metavar="FILE")
    args = ap.parse_args()
    tmp = Path(tempfile.mkdtemp(prefix="scan-ray-"))
    try:
        common = [args.model, args.photos, "--templates", args.templates]
        local = _timed(["scan", *common, "--out", str(tmp / "local")])
        ray = _timed(["scan", *common, "--out", str(tmp / "ray"), "--engine", "ray",
                      *(["--actors", str(args.actors)] if args.actors else [])])
        same = _rows(tmp / "local") == _rows(tmp / "ray")
        n = len(_rows(tmp / "local"))
        rerun = _timed(["scan", *common, "--out", str(tmp / "ray"), "--engine", "ray"])
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    costs = _stage_costs(args.model, args.templates, args.photos, args.stage_photos)
    cores = os.cpu_count() or 1
    from genuine.infer.scan_ray import split_cpus

    per_node = {}
    for c in (2, 16, 64):
        judges, actors = split_cpus(c)
        per_node[c] = min(actors / costs["decode_s"], judges / costs["judge_s"])
    out = {"cores": cores, "photos": n, "local_s": local, "ray_s": ray, "ray_rerun_s": rerun, "same_results": same,
           "local_photos_per_s": n / local, "ray_photos_per_s": n / ray, **costs,
           "model_photos_per_s_per_node": per_node}
    print(f"{n} photos on {cores} cores: local {local:.1f} s ({n / local:.1f} photos/s), Ray {ray:.1f} s "
          f"({n / ray:.1f} photos/s, x{local / ray:.2f} of local, Ray's start included); a rerun with nothing "
          f"to do {rerun:.1f} s; same results.csv: {same}")
    print(f"one core: decode+rectify+variation {1000 * costs['decode_s']:.0f} ms/photo, model+verdict "
          f"{1000 * costs['judge_s']:.1f} ms/photo ({costs['photos']} photos)")
    print("scaling model, photos/s per node: " + ", ".join(f"{c} cores {v:.0f}" for c, v in per_node.items()))
    if args.json:
        Path(args.json).write_text(json.dumps(out, indent=2) + "\n")


if __name__ == "__main__":
    main()
