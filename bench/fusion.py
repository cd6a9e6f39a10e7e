"""Benchmark: the comparator and the training-free baseline fused by a fixed rule, on the same test photos.

    python bench/fusion.py COMPARATOR_EVAL/predictions.csv BASELINE_EVAL/predictions.csv

Both files come from `genuine evaluate` (the comparator's exported ONNX file, and `genuine evaluate aligned` on the
same data and split). Their p_counterfeit are each calibrated on val; the fused scores are their mean and their
maximum, rules with nothing fitted, so nothing is learnt from the test photos. Reported: AUROC, TPR at 1% and 5%
FPR, and AUROC per defect family (the family's counterfeits against every genuine photo), as JSON.
"""
from __future__ import annotations

import argparse
import csv
import json

import numpy as np

from genuine.train.metrics import binary_metrics


def load(path: str) -> dict[str, dict]:
    with open(path, newline="", encoding="utf-8") as fh:
        return {r["path"]: r for r in csv.DictReader(fh)}


def summary(y: np.ndarray, p: np.ndarray, family: np.ndarray) -> dict:
    m = binary_metrics(y, p)
    per = {}
    for f in sorted(set(family[y == 1])):
        keep = (y == 0) | (family == f)
        per[f] = round(binary_metrics(y[keep], p[keep])["auroc"], 4)
    return {"auroc": round(m["auroc"], 4), "tpr_at_fpr_1pct": round(m["tpr_at_fpr_1pct"], 4),
            "tpr_at_fpr_5pct": round(m["tpr_at_fpr_5pct"], 4), "per_family": per}


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("comparator")
    ap.add_argument("baseline")
    args = ap.parse_args()
    a, b = load(args.comparator), load(args.baseline)
    keys = sorted(set(a) & set(b))
    if len(keys) < len(a) or len(keys) < len(b):
        raise SystemExit(f"the two files score different photos ({len(a)} and {len(b)}, {len(keys)} in common): "
                         f"evaluate both on the same data and split")
    y = np.array([a[k]["label"] == "counterfeit" for k in keys], int)
    family = np.array([a[k]["defect"] for k in keys])
    pa = np.array([float(a[k]["p_counterfeit"]) for k in keys])
    pb = np.array([float(b[k]["p_counterfeit"]) for k in keys])
    out = {"photos": len(keys), "comparator": summary(y, pa, family), "baseline": summary(y, pb, family),
           "mean": summary(y, (pa + pb) / 2, family), "max": summary(y, np.maximum(pa, pb), family)}
    print(json.dumps(out, indent=1))


if __name__ == "__main__":
    main()
