"""How much each zone check's finding weighs, fitted on val: the checkpoint's meta["zones"].

    fit = fit_zones(p_val, va.zones, va.labels, thresholds)   # p_val: the calibrated (or fused) p of each val photo

A zone's finding is added to the calibrated score in logit space, logit(p) + sum_z w_z * score_z, with w_z >= 0
fitted by maximum likelihood on the val photos with the score's logit as a fixed offset: the comparator and the
genuine variation stay as calibrated, and a zone weighs what its findings are worth on val, given them. A zone
that did not fail on val (384 px photos read nothing) gets no weight; one that fires on genuine photos as often as
on counterfeits gets little. The fit is kept only when it does not raise val's false alarms at the SUSPECT threshold
above max_fpr (or above what they were): the weights are scaled down until they do not, or refused.
"""
from __future__ import annotations

import numpy as np
from scipy.optimize import minimize
from sklearn.metrics import roc_auc_score

from genuine.infer.zones import ZONES, features, findings_of

L2 = 0.1      # a little shrinkage: a zone that failed on three val photos must not get an unbounded weight


def zone_matrix(zones: list[str]) -> np.ndarray:
    """(n, len(ZONES)) of each photo's zone scores (0 where a zone passed or was not read)."""
    return np.array([[features(findings_of(z))[k] for k in ZONES] for z in zones], float).reshape(len(zones), len(ZONES))


def _nll(w, X, off, y):
    z = off + X @ w
    return float(np.sum(np.logaddexp(0, z) - y * z) + L2 * w @ w), X.T @ (1 / (1 + np.exp(-z)) - y) + 2 * L2 * w


def fit_zones(p, zones: list[str] | None, y, suspect, max_fpr: float) -> dict:
    """suspect: the SUSPECT threshold each val photo is judged by (one number, or one per photo: fused photos have
    the fusion's)."""
    if zones is None:
        return {"used": False, "why": "val was built without zone checks"}
    X, y = zone_matrix(zones), np.asarray(y, float)
    fired = (X > 0).sum(0)
    if not fired.any():
        return {"used": False, "why": "no zone check failed on any val photo (photos too small to read print?)"}
    pc = np.clip(np.asarray(p, float), 1e-7, 1 - 1e-7)
    off = np.log(pc / (1 - pc))
    w = minimize(_nll, np.zeros(X.shape[1]), args=(X, off, y), jac=True, method="L-BFGS-B",
                 bounds=[(0, None)] * X.shape[1]).x
    after = 1 / (1 + np.exp(-(off + X @ w)))
    ts = np.broadcast_to(np.asarray(suspect, float), pc.shape)
    g = y == 0
    fpr_before, fpr_after = float(np.mean(pc[g] >= ts[g])), float(np.mean(after[g] >= ts[g]))
    val = {"photos": int(len(y)), "auroc_before": float(roc_auc_score(y, pc)), "auroc_after": float(roc_auc_score(y, after)),
           "fpr_at_suspect_before": fpr_before, "fpr_at_suspect_after": fpr_after,
           "failed_on_val": {z: {"genuine": int(((X[:, k] > 0) & g).sum()), "counterfeit": int(((X[:, k] > 0) & ~g).sum())}
                             for k, z in enumerate(ZONES)}}
    if not w.any():
        return {"used": False, "why": "the zone checks do not separate counterfeits on val (weights 0)", "val": val}
    allowed = max(max_fpr, fpr_before)
    k = _shrink(w, X, off, g, ts, allowed)
    if k == 0:
        return {"used": False, "why": f"with the zones val's false alarms at SUSPECT would rise to {fpr_after:.3f}",
                "val": val}
    if k < 1:   # the largest share of the fitted weights that keeps val's false alarms where they were allowed
        w = w * k
        after = 1 / (1 + np.exp(-(off + X @ w)))
        val.update({"auroc_after": float(roc_auc_score(y, after)), "fpr_at_suspect_after": float(np.mean(after[g] >= ts[g])),
                    "shrunk_by": round(float(k), 4)})
    weights = {z: round(float(w[j]), 4) for j, z in enumerate(ZONES)}
    return {"used": True, "weights": weights, "method": "logistic, calibrated logit as offset, w >= 0, on val; "
            "scaled down where val's false alarms at SUSPECT would rise", "val": val}


def _shrink(w, X, off, genuine, suspect, allowed: float) -> float:
    """The largest k in [0, 1] (to 1/1000) with val's genuine photos called SUSPECT at most `allowed` under k * w."""
    ts = np.clip(suspect[genuine], 1e-7, 1 - 1e-7)
    fpr = lambda k: float(np.mean(off[genuine] + X[genuine] @ (k * w) >= np.log(ts / (1 - ts))))  # noqa: E731
    if fpr(1.0) <= allowed:
        return 1.0
    lo, hi = 0.0, 1.0
    for _ in range(10):
        mid = (lo + hi) / 2
        lo, hi = (mid, hi) if fpr(mid) <= allowed else (lo, mid)
    return lo if lo >= 1e-3 else 0.0
