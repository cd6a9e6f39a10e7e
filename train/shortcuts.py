"""Shortcut audit: can global photo statistics alone tell the labels apart?

If per-channel mean and spread, sharpness or file size predict genuine vs
counterfeit, the dataset has a capture shortcut (different phones, light or
backgrounds per class) and a CNN will learn it instead of the product. A fair
dataset scores near AUROC 0.5 here.

    report = audit(discover("datasets/synthpack").records)
    report["auroc"], report["per_feature"]
"""
from __future__ import annotations

import os
from concurrent.futures import ProcessPoolExecutor

import numpy as np

from genuine.infer.errors import UsageError
from genuine.infer.photo import PhotoError, load_photo

FEATURES = ["mean_r", "mean_g", "mean_b", "std_r", "std_g", "std_b", "sharpness", "log_file_size"]


def global_stats(path: str) -> list[float] | None:
    try:
        size = os.path.getsize(path)
        x = np.asarray(load_photo(path), dtype=np.float32)
    except (PhotoError, OSError):
        return None
    g = x.mean(axis=2)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return [*x.mean(axis=(0, 1)).tolist(), *x.std(axis=(0, 1)).tolist(), float(np.log(lap.var() + 1e-6)),
            float(np.log(size))]


def audit(records, workers: int = 0, folds: int = 5, seed: int = 0) -> dict:
    """Out-of-fold AUROC of a logistic regression on global statistics, folds grouped by item."""
    from sklearn.linear_model import LogisticRegression
    from sklearn.metrics import roc_auc_score
    from sklearn.model_selection import StratifiedGroupKFold
    from sklearn.pipeline import make_pipeline
    from sklearn.preprocessing import StandardScaler

    paths = [str(r.path) for r in records]
    workers = workers or os.cpu_count() or 1
    if workers == 1:
        feats = [global_stats(p) for p in paths]
    else:
        with ProcessPoolExecutor(workers) as ex:
            feats = list(ex.map(global_stats, paths, chunksize=16))
    keep = [i for i, f in enumerate(feats) if f is not None]
    X = np.array([feats[i] for i in keep], dtype=np.float64)
    y = np.array([records[i].label == "counterfeit" for i in keep], dtype=int)
    if len(set(y.tolist())) < 2:
        raise UsageError("the shortcut audit needs photos of both labels")
    groups = [f"{records[i].product}/{records[i].item_id or records[i].rel}" for i in keep]
    oof = np.zeros(len(y))
    cv = StratifiedGroupKFold(n_splits=min(folds, int(np.bincount(y).min())), shuffle=True, random_state=seed)
    for tr, te in cv.split(X, y, groups):
        model = make_pipeline(StandardScaler(), LogisticRegression(max_iter=1000))
        model.fit(X[tr], y[tr])
        oof[te] = model.predict_proba(X[te])[:, 1]
    per_feature = {}
    for j, name in enumerate(FEATURES):
        a = roc_auc_score(y, X[:, j])
        per_feature[name] = round(float(max(a, 1 - a)), 4)  # either direction is a shortcut
    return {"auroc": round(float(roc_auc_score(y, oof)), 4), "photos": int(len(y)),
            "unreadable": len(paths) - len(keep), "per_feature": per_feature}
