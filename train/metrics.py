"""Metrics for a binary authenticity score (p = probability of counterfeit), via scikit-learn.

    m = binary_metrics(y_true, p)            # AUROC, TPR@1%/5% FPR, ECE, Brier, accuracy
    curve = accuracy_coverage(y_true, p)     # accuracy when abstaining on the least confident
"""
from __future__ import annotations

import numpy as np
from sklearn.calibration import calibration_curve
from sklearn.metrics import accuracy_score, brier_score_loss, roc_auc_score, roc_curve


def tpr_at_fpr(y, p, fpr_target: float) -> float:
    """Detection rate when at most fpr_target of genuine photos are flagged (ROC step, not interpolated)."""
    fpr, tpr, _ = roc_curve(y, p)
    ok = fpr <= fpr_target + 1e-12
    return float(tpr[ok].max()) if ok.any() else 0.0


def ece(y, p, bins: int = 15) -> float:
    """Expected calibration error of the counterfeit probability, equal-width bins."""
    y, p = np.asarray(y, float), np.asarray(p, float)
    frac_pos, mean_pred = calibration_curve(y, p, n_bins=bins, strategy="uniform")
    counts = np.histogram(p, bins=np.linspace(0, 1, bins + 1))[0]
    counts = counts[counts > 0]  # calibration_curve drops empty bins too
    return float(np.sum(counts * np.abs(frac_pos - mean_pred)) / len(p))


def accuracy_coverage(y, p, points: int = 21) -> list[dict]:
    """Accuracy of the 0.5 decision on the most confident `coverage` share of photos."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    order = np.argsort(-np.abs(p - 0.5), kind="stable")
    correct = ((p >= 0.5).astype(int) == y)[order]
    out = []
    for cov in np.linspace(1.0, 0.0, points)[:-1]:
        n = max(1, int(round(cov * len(y))))
        out.append({"coverage": round(float(cov), 4), "accuracy": float(correct[:n].mean())})
    return out


def binary_metrics(y, p) -> dict:
    y, p = np.asarray(y, int), np.asarray(p, float)
    both = len(set(y.tolist())) == 2
    return {
        "n": int(len(y)), "n_counterfeit": int(y.sum()), "n_genuine": int((1 - y).sum()),
        "auroc": float(roc_auc_score(y, p)) if both else None,
        "tpr_at_fpr_1pct": tpr_at_fpr(y, p, 0.01) if both else None,
        "tpr_at_fpr_5pct": tpr_at_fpr(y, p, 0.05) if both else None,
        "accuracy": float(accuracy_score(y, p >= 0.5)),
        "ece": ece(y, p),
        "brier": float(brier_score_loss(y, p, pos_label=1)) if len(y) else None,
    }
