"""Verdicts from a calibrated counterfeit probability and the model's own thresholds.

    decide(0.93, {"threshold_genuine": 0.2, "threshold_suspect": 0.8})  -> "SUSPECT"
    decide(0.93, {..., "validation": {"validated": False, ...}})        -> "INCONCLUSIVE"
"""
from __future__ import annotations

GENUINE, SUSPECT, INCONCLUSIVE = "GENUINE", "SUSPECT", "INCONCLUSIVE"
VERDICTS = (GENUINE, INCONCLUSIVE, SUSPECT)
ERROR = "ERROR"   # not a verdict: a scan's row for a file that could not be read or decoded


def not_validated(thresholds: dict) -> str | None:
    """Why these thresholds must not decide anything, or None. Calibrations record their evidence
    (thresholds["validation"], genuine.train.calibrate.validation); one whose validation AUROC is not clearly above
    chance, or rests on too few photos, answers only INCONCLUSIVE. Calibrations made before the evidence was
    recorded carry none and decide as before."""
    v = thresholds.get("validation")
    if isinstance(v, dict) and v.get("validated") is False:
        return f"not validated: {v.get('why') or 'its calibration is not evidence of separation'}"
    return None


def decide(p_counterfeit: float, thresholds: dict) -> str:
    """GENUINE below threshold_genuine, SUSPECT from threshold_suspect, INCONCLUSIVE between; always INCONCLUSIVE
    when the thresholds are not validated: a model that knows nothing must never say GENUINE."""
    if not_validated(thresholds):
        return INCONCLUSIVE
    if p_counterfeit >= thresholds["threshold_suspect"]:
        return SUSPECT
    if p_counterfeit < thresholds["threshold_genuine"]:
        return GENUINE
    return INCONCLUSIVE


def decisive(p: float, *thresholds: float) -> list[str]:
    """p and the thresholds it is compared with, each with the fewest decimals (at least 2) at which p differs from
    every one of them: never "p=0.50 < 0.50"."""
    for d in range(2, 10):
        out = [f"{v:.{d}f}" for v in (p, *thresholds)]
        if all(out[0] != t for t in out[1:]):
            return out
    return [repr(float(v)) for v in (p, *thresholds)]
