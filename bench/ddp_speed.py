"""Benchmark: end-to-end comparator training in one process against torchrun with N processes (gloo on CPUs).

    python bench/ddp_speed.py DATA [--nproc 2] [--epochs 1] [--face-size 160x112] [--backbone mobilenet_v3_small]

Trains the same run twice into fresh folders, one process (all cores) and N processes (one thread each), and
reports the epoch time from each run's log.jsonl (rectification, cached after the first run, is not counted) and
the largest weight difference between the two results (DDP must give the single-process model).
"""
from __future__ import annotations

import argparse
import json
import os
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch


def _epoch_seconds(run: Path) -> float:
    rows = [json.loads(line) for line in (run / "log.jsonl").read_text().splitlines() if line.strip()]
    return sum(r["seconds"] for r in rows) / len(rows)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("data")
    ap.add_argument("--nproc", type=int, default=2)
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--face-size", default="160x112")
    ap.add_argument("--backbone", default="mobilenet_v3_small")
    ap.add_argument("--batch", type=int, default=16)
    args = ap.parse_args()
    common = [args.data, "--train-backbone", "--epochs", str(args.epochs), "--face-size", args.face_size,
              "--backbone", args.backbone, "--weights", "none", "--batch", str(args.batch), "--loader-workers", "0"]
    tmp = Path(tempfile.mkdtemp(prefix="ddp-speed-"))
    try:
        subprocess.run([sys.executable, "-m", "genuine", "train", *common, "--out", str(tmp / "one")], check=True,
                       stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        env = {**os.environ, "OMP_NUM_THREADS": "1"}
        subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node",
                        str(args.nproc), "-m", "genuine", "train", *common, "--out", str(tmp / "ddp")], check=True,
                       env=env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        one, ddp = _epoch_seconds(tmp / "one"), _epoch_seconds(tmp / "ddp")
        a, b = (torch.load(tmp / r / "last.pt", weights_only=True)["model"] for r in ("one", "ddp"))
        diff = max(float((a[k].float() - b[k].float()).abs().max()) for k in a)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    print(f"{os.cpu_count()} cores: one process {one:.1f} s/epoch, torchrun {args.nproc} processes {ddp:.1f} s/epoch "
          f"(x{one / ddp:.2f}); largest weight difference {diff:.2e}")


if __name__ == "__main__":
    main()
