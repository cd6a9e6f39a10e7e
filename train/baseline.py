"""The training-free aligned baseline: each photo against the genuine variation of its own product, pixel by pixel.

    genuine evaluate aligned datasets/synthpack --split test

Per product, the aligned faces of the genuine TRAIN photos (train/faces.py) give a median face and a robust
per-pixel spread (the model and its scoring live torch-free in infer/variation.py). A query face is refined onto the median (ECC homography), fitted photometrically (gain and
offset per channel, least squares with outliers dropped), blur-matched (whichever of the two is sharper is
blurred to the other), high-passed (exposure gradients, shadows and glare are smooth) and split into luminance
and chroma (a shifted colour plate shows in chroma). Each part is divided by its spread over the genuine train
photos; the score is the mean of the most suspicious 0.05% of the face, standardised by the same score of the
genuine train photos of that product. Nothing is learnt but the two calibration numbers on the val split
(Platt, then temperature and the operating point exactly as for trained models).

    model = fit(train_genuine_faces)            # (n, h, w, 3) uint8
    s = score(model, faces)                     # higher: more unlike genuine units; z_map() shows where
"""
from __future__ import annotations

import os
import time
from collections import Counter

import numpy as np

from genuine.infer.errors import UsageError
from genuine.infer.templates import load_templates
from genuine.infer.variation import BLURS, CHROMA_WEIGHT, FLOOR, HIGH_PASS, TOP, ProductModel, fit, score, z_map  # noqa: F401
from genuine.infer.verdict import INCONCLUSIVE, decide
from genuine.train.calibrate import fit_temperature, operating_point, sigmoid
from genuine.train.data import items, select
from genuine.train.report_build import build_report
from genuine.train.faces import aligned_faces
from genuine.train.layout import discover
from genuine.train.metrics import binary_metrics

UNALIGNED_P = 0.5     # p(counterfeit) of a photo that could not be aligned: INCONCLUSIVE, no help to AUROC


def _platt(s: np.ndarray, y: np.ndarray) -> tuple[float, float]:
    from sklearn.linear_model import LogisticRegression

    lr = LogisticRegression(C=1e4).fit(s[:, None], y)
    return float(lr.coef_[0, 0]), float(lr.intercept_[0])


def _scores(faces: dict, n: int, models: dict, threads: int):
    """(score per photo, NaN where not scored; reason per photo, "" where scored) of one split's aligned faces."""
    s, reason = np.full(n, np.nan), [""] * n
    for product, f in faces.items():
        for j, i in enumerate(f.index):
            reason[i] = f.reasons[j] or ("" if product in models else "no_reference")
        if product in models:
            ok = f.ok.copy()
            s[f.index[ok]] = score(models[product], f.faces[ok], threads)
    return s, reason


def _head(ds, split: str, recs, reasons, ok, okv, faces: dict, models: dict, t_align: float, platt) -> dict:
    """What the baseline scored, what it could not align and why, and its calibration (platt: a, b, temperature)."""
    secs = np.concatenate([f.seconds[f.ok] for f in faces[split].values()] or [np.zeros(1)])
    train_failed = sum(int((~f.ok).sum()) for f in faces["train"].values())
    return {
        "checkpoint": "aligned", "scorer": "training-free aligned baseline (train/baseline.py)",
        "data": str(ds.root), "split": split,
        "caveat": "the val split was used for calibration (Platt, temperature, thresholds): optimistic"
                  if split == "val" else None,
        "same_data_as_training": True,
        "unreadable": [recs[i].rel for i in range(len(recs)) if reasons[i].startswith("unreadable")],
        "not_aligned": [{"path": recs[i].rel, "label": recs[i].label, "defect": recs[i].extra.get("defect", ""),
                         "reason": reasons[i]} for i in range(len(recs)) if not ok[i]],
        "not_aligned_policy": f"p_counterfeit={UNALIGNED_P} and verdict INCONCLUSIVE; counted in every metric",
        "alignment": {"photos": int(len(recs)), "aligned": int(ok.sum()),
                      "reasons": dict(Counter(x for x in reasons if x)),
                      "val_not_aligned": int((~okv).sum()), "train_genuine_not_aligned": train_failed,
                      "rectify_seconds_per_photo": round(float(secs.mean()), 4),  # one process, when it was cached
                      "seconds_aligning": round(t_align, 1)},  # this run, cache hits included
        "baseline": {"high_pass": HIGH_PASS, "floor": FLOOR, "top": TOP, "chroma_weight": CHROMA_WEIGHT,
                     "blurs": list(BLURS), "reference_photos": {k: m.n for k, m in models.items()}},
        "calibration": {"platt": [platt[0], platt[1]], "temperature": platt[2], "val_photos": int(okv.sum())},
    }


def evaluate(data, split: str = "test", workers: int = 0) -> tuple[dict, np.ndarray, np.ndarray, list[dict]]:
    """(report, labels, calibrated p(counterfeit), predictions rows), as train.evaluate.evaluate gives for a checkpoint.

    Photos that cannot be aligned (or whose product has no template or no aligned genuine train photo) get
    p = UNALIGNED_P and the verdict INCONCLUSIVE, and stay in every metric: a refusal is never a free point."""
    t0 = time.perf_counter()
    ds = discover(data)
    templates = load_templates(ds.root)
    threads = workers or os.cpu_count() or 1
    train = [r for r in select(ds, "train") if r.label == "genuine"]
    val, recs = select(ds, "val"), select(ds, split)
    if not recs or not val:
        raise UsageError(f"{ds.root}: the baseline needs photos in the val split (calibration) and in {split}")
    sets = {"train": train, "val": val, split: recs}
    faces = {k: aligned_faces(ds.root, v, templates, workers=workers) for k, v in sets.items()}
    t_align = time.perf_counter() - t0
    models = {}
    for product, f in faces["train"].items():
        if f.ok.sum() >= 3:
            models[product] = fit(f.faces[f.ok], threads)

    sv, rv = _scores(faces["val"], len(val), models, threads)
    yv = np.array([r.label == "counterfeit" for r in val], int)
    okv = np.array([not x for x in rv])
    a, b = _platt(sv[okv], yv[okv])
    t = fit_temperature(a * sv[okv] + b, yv[okv])
    th = operating_point(sigmoid((a * sv[okv] + b) / t), yv[okv], groups=items([r for r, k in zip(val, okv) if k]))
    s, reasons = (sv, rv) if split == "val" else _scores(faces[split], len(recs), models, threads)
    y = np.array([r.label == "counterfeit" for r in recs], int)
    ok = np.array([not x for x in reasons])
    p = np.where(ok, sigmoid((a * np.nan_to_num(s) + b) / t), UNALIGNED_P)
    verdicts = [decide(float(pi), th) if k else INCONCLUSIVE for pi, k in zip(p, ok)]
    head = _head(ds, split, recs, reasons, ok, okv, faces, models, t_align, (a, b, t))
    report, rows = build_report(recs, y, p, th, verdicts, head)
    report["metrics_aligned_only"] = binary_metrics(y[ok], p[ok]) if ok.any() else None
    report["alignment"]["seconds_total"] = round(time.perf_counter() - t0, 1)
    return report, y, p, rows
