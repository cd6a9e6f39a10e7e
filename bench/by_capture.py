"""Where a SynthPack evaluation loses its signal by capture: the same predictions split by how each photo was taken
(sharp, defocused, motion-blurred), from the manifest's capture columns.

    python bench/by_capture.py checkpoints/synthpack-1600-z7/eval-model-test/predictions.csv datasets/synthpack-1600

A phone-resolution photo keeps the fine print and the bars only when it is sharp; this measures how much of the
gap to the targets is the blurred photos (which an officer is asked to retake) rather than the checks.
"""
from __future__ import annotations

import argparse
import csv
from collections import defaultdict
from pathlib import Path

import numpy as np
from sklearn.metrics import roc_auc_score

FAMILIES = ("colour", "print", "security", "barcode", "text")
GROUPS = {
    "every capture": lambda d, m: True,
    "sharp (no defocus, no motion)": lambda d, m: d == 0 and m == 0,
    "defocus only": lambda d, m: d > 0 and m == 0,
    "motion blur": lambda d, m: m > 0,
}


def _auc(c: list[float], g: list[float]) -> float:
    return float(roc_auc_score([1] * len(c) + [0] * len(g), c + g)) if c and g else float("nan")


def main(args) -> None:
    with open(Path(args.data) / "manifest.csv", newline="") as f:
        capture = {r["path"]: (float(r["defocus"]), float(r["motion"])) for r in csv.DictReader(f)}
    with open(args.predictions, newline="") as f:
        rows = list(csv.DictReader(f))
    print("| captures | genuine / counterfeit photos | AUROC | TPR at 1% FPR | INCONCLUSIVE | "
          + " | ".join(FAMILIES) + " |")
    print("| --- " * (5 + len(FAMILIES)) + "|")
    for name, keep in GROUPS.items():
        sub = [r for r in rows if keep(*capture[r["path"]])]
        g = [float(r["p_counterfeit"]) for r in sub if r["label"] == "genuine"]
        c = [float(r["p_counterfeit"]) for r in sub if r["label"] != "genuine"]
        fam = defaultdict(list)
        for r in sub:
            if r["label"] != "genuine":
                fam[r["defect"]].append(float(r["p_counterfeit"]))
        tpr = float(np.mean(np.array(c) > np.quantile(g, 0.99))) if c and g else float("nan")
        inc = float(np.mean([r["verdict"] == "INCONCLUSIVE" for r in sub])) if sub else float("nan")
        cells = [f"{_auc(fam[k], g):.2f} ({len(fam[k])})" if fam[k] else "-" for k in FAMILIES]
        print(f"| {name} | {len(g)} / {len(c)} | {_auc(c, g):.3f} | {tpr:.2f} | {inc:.2f} | " + " | ".join(cells) + " |")


if __name__ == "__main__":
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("predictions", help="predictions.csv written by genuine evaluate")
    ap.add_argument("data", help="the SynthPack folder it evaluated (its manifest.csv has the capture columns)")
    main(ap.parse_args())
