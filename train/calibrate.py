"""Calibration on the validation split: temperature scaling and the operating point.

    T = fit_temperature(val_logits, val_labels)
    op = operating_point(sigmoid(val_logits / T), val_labels, max_fpr=0.01, max_miss=0.05)

Two error targets define three verdicts: at most `max_fpr` of genuine photos may be
flagged SUSPECT (p >= threshold_suspect), at most `max_miss` of counterfeits may be
called GENUINE (p < threshold_genuine); what falls between is INCONCLUSIVE.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize_scalar

from genuine.infer.errors import UsageError


def sigmoid(z):
    return 1.0 / (1.0 + np.exp(-np.clip(np.asarray(z, float), -60, 60)))


def _nll(logits, y, t: float) -> float:
    p = np.clip(sigmoid(logits / t), 1e-12, 1 - 1e-12)
    return float(-np.mean(y * np.log(p) + (1 - y) * np.log(1 - p)))


def fit_temperature(logits, y) -> float:
    """The T minimising validation NLL of sigmoid(logit / T); T > 1 softens an over-confident model."""
    logits, y = np.asarray(logits, float), np.asarray(y, float)
    res = minimize_scalar(lambda lt: _nll(logits, y, float(np.exp(lt))), bounds=(np.log(0.05), np.log(50.0)),
                          method="bounded", options={"xatol": 1e-4})
    return float(np.exp(res.x))


def operating_point(p, y, max_fpr: float = 0.01, max_miss: float = 0.05) -> dict:
    """Thresholds on the calibrated counterfeit probability meeting both targets on this data."""
    p, y = np.asarray(p, float), np.asarray(y, int)
    g, c = np.sort(p[y == 0])[::-1], np.sort(p[y == 1])
    if not len(g) or not len(c):
        raise UsageError("calibration needs validation photos of both labels")
    k = int(np.floor(max_fpr * len(g)))           # genuine photos we may flag
    t_suspect = float(np.nextafter(g[k], 1.0)) if k < len(g) else 0.0
    m = int(np.floor(max_miss * len(c)))          # counterfeits we may pass
    t_genuine = min(float(c[m]) if m < len(c) else 1.0, t_suspect)
    return {"threshold_suspect": t_suspect, "threshold_genuine": t_genuine, "target_fpr": max_fpr,
            "target_miss": max_miss, **rates(p, y, t_genuine, t_suspect),
            "note": f"from {len(g)} genuine and {len(c)} counterfeit validation photos; "
                    f"false-alarm resolution 1/{len(g)}"}


def rates(p, y, t_genuine: float, t_suspect: float) -> dict:
    p, y = np.asarray(p, float), np.asarray(y, int)
    suspect, genuine = p >= t_suspect, p < t_genuine
    decided = suspect | genuine
    correct = (suspect & (y == 1)) | (genuine & (y == 0))
    return {"coverage": float(decided.mean()),
            "false_alarm_rate": float(suspect[y == 0].mean()) if (y == 0).any() else None,
            "miss_rate": float(genuine[y == 1].mean()) if (y == 1).any() else None,
            "accuracy_when_decided": float(correct[decided].mean()) if decided.any() else None}
