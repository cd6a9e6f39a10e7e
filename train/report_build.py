"""The evaluation report any scorer gets (a checkpoint, an exported file, the training-free aligned baseline):
metrics, the operating point's rates, the confusion of verdicts, per product and per defect family, the worst
mistakes, and one predictions.csv row per photo.

    report, rows = build_report(records, y, p, thresholds, verdicts)     # train/evaluate.py, train/baseline.py
"""
from __future__ import annotations

from collections import defaultdict

import numpy as np

from genuine.infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT, VERDICTS, decide
from genuine.train.calibrate import rates
from genuine.train.metrics import accuracy_coverage, binary_metrics

WORST = 25  # most confident mistakes listed in the report


def _rates(verdicts: list[str], y) -> dict:
    """calibrate.rates of the verdicts themselves (a scorer may answer INCONCLUSIVE whatever its score)."""
    return rates([{SUSPECT: 1.0, GENUINE: 0.0}.get(v, 0.5) for v in verdicts], y, 0.25, 0.75)


def breakdown(records, y, p, verdicts, key, with_all_genuine: bool = False) -> dict:
    """Metrics per group of key(record): per product (both labels), or per defect family with
    with_all_genuine (a family's counterfeits against every genuine photo)."""
    out = {}
    genuine = [i for i, r in enumerate(records) if r.label == "genuine"]
    groups = defaultdict(list)
    for i, r in enumerate(records):
        k = key(r)
        if k:
            groups[k].append(i)
    for k, idx in sorted(groups.items()):
        if with_all_genuine:
            idx = idx + genuine
        yy, pp, vv = y[idx], p[idx], [verdicts[i] for i in idx]
        m = binary_metrics(yy, pp)
        r = _rates(vv, yy)
        out[k] = {"photos": int(len(idx)), "auroc": m["auroc"], "tpr_at_fpr_1pct": m["tpr_at_fpr_1pct"],
                  "detected": float(np.mean([v == SUSPECT for v, t in zip(vv, yy) if t])) if (yy == 1).any() else None,
                  "missed": r["miss_rate"], "false_alarms": r["false_alarm_rate"], "coverage": r["coverage"]}
    return out


def build_report(records, y, p, th: dict, verdicts: list[str] | None = None, head: dict | None = None
                 ) -> tuple[dict, list[dict]]:
    """The report any scorer gets (a checkpoint, the aligned baseline) and one predictions.csv row per photo.

    verdicts: default decide(p, th); a scorer may override some (INCONCLUSIVE where it could not look)."""
    y, p = np.asarray(y, int), np.asarray(p, float)
    verdicts = verdicts or [decide(float(x), th) for x in p]
    confusion = {lab: {v: sum(1 for vv, yy in zip(verdicts, y) if vv == v and yy == (lab == "counterfeit"))
                       for v in VERDICTS} for lab in ("genuine", "counterfeit")}
    wrong = [i for i in range(len(y)) if (verdicts[i] == SUSPECT) != bool(y[i]) and verdicts[i] != INCONCLUSIVE]
    wrong.sort(key=lambda i: -abs(p[i] - 0.5))
    report = {
        **(head or {}),
        "metrics": {**binary_metrics(y, p), **_interval(records, y, p)}, "thresholds": th,
        "operating_point": _rates(verdicts, y),
        "confusion": confusion, "accuracy_coverage": accuracy_coverage(y, p),
        "per_product": breakdown(records, y, p, verdicts, product),
        "per_defect": breakdown(records, y, p, verdicts, family, with_all_genuine=True),
        "worst_mistakes": [{"path": records[i].rel, "label": records[i].label, "p_counterfeit": float(p[i]),
                            "verdict": verdicts[i], "defect": records[i].extra.get("defect", "")} for i in wrong[:WORST]],
    }
    rows = [{"path": r.rel, "product": r.product, "item_id": r.item_id or "", "label": r.label,
             "defect": r.extra.get("defect", ""), "p_counterfeit": round(float(pi), 6), "verdict": v}
            for r, pi, v in zip(records, p, verdicts)]
    return report, rows


def _interval(records, y, p) -> dict:
    """The AUROC's 95% bootstrap interval over items (photos of one item are not independent evidence): how far
    another draw of items could move it."""
    from genuine.train.calibrate import validation

    if len(set(y.tolist())) < 2:
        return {}
    v = validation(p, y, groups=[r.item_id or r.rel for r in records])
    return {"auroc_ci95_items": v["auroc_ci95"], "items": v["items"]}


def family(r):
    return r.extra.get("defect") or None


def product(r):
    return r.product
