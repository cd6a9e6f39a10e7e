"""Calibrate how references and the classifier combine: `genuine references calibrate MODEL DATA --db REFS`.

Method: for each validation photo of a product that has genuine references, four features
  [classifier logit, similarity to the closest genuine reference of its product,
   closest counterfeit minus closest genuine similarity (0 without counterfeit references), has counterfeit refs]
feed a logistic regression fitted on the validation labels: its output is the fused, calibrated
probability of counterfeit. The operating point is chosen on it as for the classifier (<= 1% of genuine
photos flagged, <= 5% of counterfeits passed). The "not covered" floor is the 1st percentile of the
nearest-reference similarity of photos whose product is in the gallery.
A photo never matches itself (same sha256) during calibration.
"""
from __future__ import annotations

import hashlib
import sys

import numpy as np
from sklearn.linear_model import LogisticRegression

from genuine.infer.contract import DEFAULT_SIM_FLOOR, MAX_SIM_FLOOR, PRODUCT_MARGIN, weak_model_warning
from genuine.infer.errors import UsageError
from genuine.infer.inspector import Inspector
from genuine.infer.references import ReferenceDB, ReferenceError, fusion_features
from genuine.infer.verdict import not_validated
from genuine.train.calibrate import operating_point
from genuine.train.data import items, select
from genuine.train.layout import discover
from genuine.train.metrics import binary_metrics

FEATURES = ["classifier_logit", "genuine_similarity", "counterfeit_minus_genuine", "has_counterfeit_refs"]


def collect(insp: Inspector, gallery, records) -> dict:
    """Classifier score, reference match and label for every photo."""
    out = {"p": [], "match": [], "y": [], "covered": [], "records": []}
    products = set(gallery.products)
    for r in records:
        data = r.path.read_bytes()
        _, x, _ = insp.load(data)
        o = insp.model.run(x[None])
        m = gallery.match(o["embedding"][0], exclude_sha=hashlib.sha256(data).hexdigest())
        out["p"].append(float(o["p_counterfeit"][0]))
        out["match"].append(m)
        out["y"].append(int(r.label == "counterfeit"))
        out["covered"].append(r.product in products)
        out["records"].append(r)
    return out


def fit(c: dict, max_fpr: float, max_miss: float) -> tuple[dict, dict]:
    idx = [i for i, (m, cov) in enumerate(zip(c["match"], c["covered"])) if cov and m["genuine"] is not None]
    if len({c["y"][i] for i in idx}) < 2:
        raise UsageError("calibration needs photos of both labels whose products have genuine references")
    X = np.stack([fusion_features(c["p"][i], c["match"][i]) for i in idx])
    y = np.array([c["y"][i] for i in idx])
    lr = LogisticRegression(C=1.0, max_iter=1000).fit(X, y)
    fused = lr.predict_proba(X)[:, 1]
    classifier = np.array([c["p"][i] for i in idx])
    nearest_cov = np.array([m["nearest"] for m, cov in zip(c["match"], c["covered"]) if cov])
    floor = float(np.quantile(nearest_cov, 0.01)) if len(nearest_cov) else DEFAULT_SIM_FLOOR
    gaps = [m["nearest"] - m["runner_up_sim"] for m in c["match"] if m.get("runner_up_sim") is not None]
    gap = float(np.median(gaps)) if gaps else None
    if floor >= MAX_SIM_FLOOR or (gap is not None and gap < PRODUCT_MARGIN):
        raise UsageError(f"the model's embedding does not tell photos apart (not-covered floor: similarity "
                         f"{floor:.6f}; median gap between the nearest product and the next: "
                         f"{'n/a' if gap is None else f'{gap:.6f}'}): a fusion calibrated on it would name products "
                         f"at random. Nothing was stored. Retrain the model, or inspect with a comparator model "
                         f"against templates (genuine references add --template)")
    fusion = {"bias": float(lr.intercept_[0]), "weights": lr.coef_[0].tolist(), "features": FEATURES,
              "thresholds": operating_point(fused, y, max_fpr, max_miss, groups=items([c["records"][i] for i in idx])),
              "sim_floor": floor}
    uncovered = [m["nearest"] for m, cov in zip(c["match"], c["covered"]) if not cov]
    report = {"photos": int(len(idx)), "auroc_classifier": binary_metrics(y, classifier)["auroc"],
              "auroc_fused": binary_metrics(y, fused)["auroc"], "sim_floor": floor,
              "uncovered_photos": len(uncovered),
              "uncovered_refused": float(np.mean(np.array(uncovered) < floor)) if uncovered else None}
    return fusion, report


def main(args) -> int:
    db = ReferenceDB(args.db)
    insp = Inspector(args.model)
    db.check_model(insp.model.sha256)
    gallery = db.gallery()
    if not len(gallery):
        raise ReferenceError(f"{args.db}: no references yet; add some with genuine references add")
    c = collect(insp, gallery, select(discover(args.data), args.split))
    fusion, report = fit(c, args.max_fpr, args.max_miss)
    db.set_meta("fusion", {**fusion, "model_sha256": insp.model.sha256, "calibrated_on": {
        "data": str(args.data), "split": args.split, **report}})
    print(f"fusion calibrated on {report['photos']} {args.split} photos (in-sample; bench/references.py measures on "
          f"test): AUROC classifier {report['auroc_classifier']:.4f} -> fused {report['auroc_fused']:.4f}; "
          f"not-covered floor: similarity {report['sim_floor']:.4f}")
    if why := not_validated(fusion["thresholds"]):
        print(f"WARNING: this fusion is {why}; inspections with it answer only INCONCLUSIVE. Add references and "
              f"validation photos, or use a stronger model", file=sys.stderr)
    if warning := weak_model_warning(insp.meta):
        print(f"WARNING: {warning}", file=sys.stderr)
    if report["uncovered_photos"]:
        print(f"photos of products without references refused as not covered: {report['uncovered_refused']:.1%} "
              f"of {report['uncovered_photos']}")
    print(f"Saved in {args.db}; inspections with --references {args.db} use it now")
    return 0
