"""Benchmark: product identification and "not covered" refusal from references, on real grocery photos.

    python bench/references.py MODEL.onnx ../shared/data/grocery-packages [--refs iconic|train|both]

References: the catalogue image of each product (iconic/), its train photos, or both; queries: the val
photos. Reports top-1 identification accuracy (nearest reference), and, leaving each product out of the
gallery in turn, the share of its photos refused as "not covered" at the similarity floor that keeps 99%
of covered photos (the rule `genuine references calibrate` uses).
"""
from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np

from genuine.infer.inspector import Inspector


def embed(insp: Inspector, paths: list[Path]) -> np.ndarray:
    out = []
    for p in paths:
        _, x, _ = insp.load(p)
        out.append(insp.model.run(x[None])["embedding"][0])
    return np.stack(out)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("data", help="grocery-packages folder (photos/train, photos/val, iconic)")
    ap.add_argument("--refs", default="both", choices=["iconic", "train", "both"])
    args = ap.parse_args()
    root = Path(args.data)
    insp = Inspector(args.model)
    refs = []
    if args.refs in ("iconic", "both"):
        refs += [(p, p.stem) for p in sorted((root / "iconic").glob("*.jpg"))]
    if args.refs in ("train", "both"):
        refs += [(p, p.parent.name) for p in sorted((root / "photos" / "train").glob("*/*/*.jpg"))]
    queries = [(p, p.parent.name) for p in sorted((root / "photos" / "val").glob("*/*/*.jpg"))]
    R, Q = embed(insp, [p for p, _ in refs]), embed(insp, [p for p, _ in queries])
    rp, qp = np.array([n for _, n in refs]), np.array([n for _, n in queries])
    sims = Q @ R.T
    top1 = rp[sims.argmax(1)]
    nearest = sims.max(1)
    floor = float(np.quantile(nearest, 0.01))
    refused = []
    for product in sorted(set(qp)):
        keep = rp != product
        q = qp == product
        refused.extend((sims[q][:, keep].max(1) < floor).tolist())
    print(json.dumps({"model": args.model, "references": f"{args.refs} ({len(refs)} photos, {len(set(rp))} products)",
                      "queries": len(queries), "top1_accuracy": round(float((top1 == qp).mean()), 4),
                      "chance": round(1 / len(set(rp)), 4), "similarity_floor": round(floor, 4),
                      "left_out_refused": round(float(np.mean(refused)), 4)}, indent=1))


if __name__ == "__main__":
    main()
