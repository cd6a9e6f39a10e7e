"""Verdicts from a calibrated counterfeit probability and the model's own thresholds.

    decide(0.93, {"threshold_genuine": 0.2, "threshold_suspect": 0.8})  -> "SUSPECT"
"""
from __future__ import annotations

GENUINE, SUSPECT, INCONCLUSIVE = "GENUINE", "SUSPECT", "INCONCLUSIVE"
VERDICTS = (GENUINE, INCONCLUSIVE, SUSPECT)
ERROR = "ERROR"   # not a verdict: a scan's row for a file that could not be read or decoded


def decide(p_counterfeit: float, thresholds: dict) -> str:
    if p_counterfeit >= thresholds["threshold_suspect"]:
        return SUSPECT
    if p_counterfeit < thresholds["threshold_genuine"]:
        return GENUINE
    return INCONCLUSIVE
