"""How the comparator and a product's genuine variation combine, fitted on val: the checkpoint's meta["fusion"].

    s = variation_scores(train_faces, val_faces)               # FaceSets at the model's input size
    fusion = fit_fusion(p_val, s, y_val, max_fpr=0.01, max_miss=0.05)

The comparator compares a face with its template and generalises to new products; the variation model
(infer/variation.py) knows, pixel by pixel, how genuine photos of one product vary, and needs a few of them. They
fail on different defect families (BENCHMARKS.md, issue 11: text, barcode and logo for the comparator; print and
colour for the variation model), so their combination is fitted: a logistic regression on [comparator logit,
variation score] over the val photos whose product has genuine train photos, with its own operating point.
The inspector uses it for products that have genuine photos in the reference store, and the comparator alone,
with its own thresholds, for products that have only a template.
"""
from __future__ import annotations

import os

import numpy as np
from sklearn.linear_model import LogisticRegression
from sklearn.metrics import roc_auc_score

from genuine.infer.errors import UsageError
from genuine.infer.variation import MIN_PHOTOS, fit, fused_p, score
from genuine.infer.verdict import not_validated
from genuine.train.calibrate import operating_point
from genuine.train.metrics import binary_metrics

MIN_VAL = 20   # val photos (of both labels together) the fusion needs to be fitted at all


def variation_scores(train, fs, threads: int = 0) -> np.ndarray:
    """Variation score of every face of fs against its product's model, fitted on that product's genuine faces in
    `train` (at least MIN_PHOTOS of them); NaN where there is no model."""
    threads = threads or os.cpu_count() or 1
    s = np.full(len(fs), np.nan)
    for k, name in enumerate(fs.names):
        idx = np.flatnonzero(fs.product == k)
        if not len(idx) or name not in train.names:
            continue
        genuine = train.faces[(train.labels == 0) & (train.product == train.names.index(name))]
        if len(genuine) >= MIN_PHOTOS:
            s[idx] = score(fit(genuine, threads), fs.faces[idx], threads)
    return s


def fit_fusion(p: np.ndarray, s: np.ndarray, y: np.ndarray, max_fpr: float, max_miss: float,
               groups=None) -> dict:
    """The fusion fitted on val: {"used": True, coef, intercept, thresholds, val metrics}, or {"used": False,
    "why": ...} when val cannot support it, the variation score does not help, or the fused score is not
    validated (its AUROC interval reaches chance): the comparator alone then decides."""
    ok = ~np.isnan(s)
    y, p, s = np.asarray(y, int)[ok], np.asarray(p, float)[ok], s[ok]
    groups = None if groups is None else np.asarray(groups)[ok]
    if ok.sum() < MIN_VAL or y.min(initial=1) == y.max(initial=0):
        return {"used": False, "why": f"{int(ok.sum())} val photos with a variation model (both labels and at least "
                                      f"{MIN_VAL} needed)"}
    pc = np.clip(p, 1e-7, 1 - 1e-7)
    lr = LogisticRegression(C=1.0).fit(np.stack([np.log(pc / (1 - pc)), s], 1), y)
    fusion = {"used": True, "coef": [float(v) for v in lr.coef_[0]], "intercept": float(lr.intercept_[0]),
              "features": ["comparator logit (calibrated)", "genuine-variation score"],
              "method": "logistic regression on val photos whose product has genuine photos",
              "min_photos": MIN_PHOTOS}
    if fusion["coef"][1] <= 0:
        return {"used": False, "why": "the variation score does not separate counterfeits on val (weight <= 0)"}
    pf = fused_p(p, s, fusion)
    val = binary_metrics(y, pf)
    val.update({"photos": int(len(y)), "comparator_auroc": float(roc_auc_score(y, p)),
                "variation_auroc": float(roc_auc_score(y, s))})
    try:
        fusion["thresholds"] = operating_point(pf, y, max_fpr=max_fpr, max_miss=max_miss, groups=groups)
    except UsageError as e:
        return {"used": False, "why": f"fused score: {e}"}
    if why := not_validated(fusion["thresholds"]):
        return {"used": False, "why": f"fused score {why}"}
    fusion["val"] = val
    return fusion
