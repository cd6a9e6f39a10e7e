"""Benchmark: does a reference gallery generalise beyond the classifier? (SynthPack, held-out items)

    python bench/references_synth.py MODEL.onnx DATA [--unseen DATA2] [--refs-per-product 40]

DATA: a SynthPack the model was trained on, ideally made with `--holdout-defects` (those families appear
in its test split only). DATA2: a SynthPack of products the model never saw (another `--seed`).

1. References: up to --refs-per-product genuine photos of each product from DATA's train split (what a
   brand trainer holds), added with the real `ReferenceDB.add`.
2. Fusion calibrated on DATA's val split (`train.fusion.fit`, as `genuine references calibrate` does).
3. DATA's test split: AUROC of the classifier alone and of the fused score, overall, on the seen
   families and on the held-out families (each family's counterfeits against all test genuine photos).
4. DATA2: its products' genuine train photos are added as references with no retraining and no
   recalibration (what a trainer does for a new product); AUROC of both scores on its test split, and
   how often the product is identified.
"""
from __future__ import annotations

import argparse
import json
import tempfile
import time
from pathlib import Path

import numpy as np

from genuine.infer.inspector import Inspector
from genuine.infer.references import ReferenceDB, fuse
from genuine.train.data import select
from genuine.train.fusion import collect, fit
from genuine.train.layout import discover
from genuine.train.metrics import binary_metrics


def add_references(db: ReferenceDB, insp: Inspector, ds, per_product: int) -> int:
    recs = [r for r in select(ds, "train") if r.label == "genuine"]
    n = 0
    for product in sorted({r.product for r in recs}):
        paths = sorted(str(r.path) for r in recs if r.product == product)[:per_product]
        db.add(insp, product, paths, label="genuine", note="bench/references_synth.py")
        n += len(paths)
    return n


def scores(c: dict, fusion: dict) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    p = np.array(c["p"])
    fused = np.array([fuse(pi, m, fusion) if m and m["genuine"] is not None else pi for pi, m in zip(p, c["match"])])
    return np.array(c["y"]), p, fused


def compare(y, p, fused, mask) -> dict:
    keep = mask | (y == 0)
    if len(set(y[keep])) < 2:
        return {}
    a, b = binary_metrics(y[keep], p[keep]), binary_metrics(y[keep], fused[keep])
    return {"counterfeits": int((y[keep] == 1).sum()), "classifier_auroc": round(a["auroc"], 4),
            "fused_auroc": round(b["auroc"], 4), "classifier_tpr_at_1pct_fpr": round(a["tpr_at_fpr_1pct"], 4),
            "fused_tpr_at_1pct_fpr": round(b["tpr_at_fpr_1pct"], 4)}


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("model")
    ap.add_argument("data")
    ap.add_argument("--unseen", help="a SynthPack of products the model never saw")
    ap.add_argument("--refs-per-product", type=int, default=40)
    args = ap.parse_args()
    t0 = time.perf_counter()
    insp = Inspector(args.model)
    info = json.loads((Path(args.data) / "synthpack.json").read_text())
    held = set(info.get("holdout_defects", []))
    out = {"model_sha256": insp.model.sha256, "data": args.data, "holdout_defects": sorted(held)}
    ds = discover(args.data)
    with tempfile.TemporaryDirectory() as tmp:
        db = ReferenceDB(Path(tmp) / "refs.db", create=True)
        out["references"] = add_references(db, insp, ds, args.refs_per_product)
        gallery = db.gallery()
        fusion, report = fit(collect(insp, gallery, select(ds, "val")), 0.01, 0.05)
        out["fusion"] = {"weights": dict(zip(fusion["features"], np.round(fusion["weights"], 3).tolist())),
                         "val_auroc_classifier": round(report["auroc_classifier"], 4),
                         "val_auroc_fused": round(report["auroc_fused"], 4)}
        c = collect(insp, gallery, select(ds, "test"))
        y, p, fused = scores(c, fusion)
        fam = np.array([r.extra.get("defect", "") for r in c["records"]])
        out["test"] = {"all": compare(y, p, fused, y == 1),
                       "seen_families": compare(y, p, fused, (y == 1) & ~np.isin(fam, list(held))),
                       "heldout_families": compare(y, p, fused, (y == 1) & np.isin(fam, list(held))),
                       "per_family": {f: compare(y, p, fused, fam == f) for f in sorted(set(fam) - {""})}}
        if args.unseen:
            before = set(gallery.products)
            unseen = discover(args.unseen)
            out["unseen_references"] = add_references(db, insp, unseen, args.refs_per_product)
            gallery = db.gallery()
            c = collect(insp, gallery, select(unseen, "test"))
            y, p, fused = scores(c, fusion)
            ident = [m["product"] == r.product for m, r in zip(c["match"], c["records"])]
            out["unseen"] = {"products": sorted(set(gallery.products) - before),
                             "identified": round(float(np.mean(ident)), 4), **compare(y, p, fused, y == 1)}
    out["seconds"] = round(time.perf_counter() - t0, 1)
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
