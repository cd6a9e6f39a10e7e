"""`genuine evaluate`: honest numbers for a checkpoint on a split, overall, per product, per defect family.

    genuine evaluate checkpoints/synthpack/best.pt datasets/synthpack --split test
    genuine evaluate checkpoints/synthpack/model.onnx datasets/synthpack      # the deployed file itself
    genuine evaluate aligned datasets/synthpack --split test     # the training-free baseline (train/baseline.py)

Every path scores, then shares build_report(), write() and summary(): every model lands in the same table.
A comparator (checkpoint or ONNX) sees each photo as the inspector does: rectified onto its product's template
(cached per dataset), quality-gated, compared; a photo that cannot be rectified is INCONCLUSIVE at p = 0.5 and
stays in every metric.
"""
from __future__ import annotations

import csv
import json
import sys
from collections import Counter
from pathlib import Path

import numpy as np
import torch
from sklearn.metrics import roc_auc_score

from genuine.infer.atomic import atomic_write, write_text
from genuine.infer.contract import is_comparator, weak_model_warning
from genuine.infer.errors import UsageError
from genuine.infer.model_input import face_model_input
from genuine.infer.preprocess import RESIZE
from genuine.infer.verdict import INCONCLUSIVE, not_validated
from genuine.train import checkpoint
from genuine.train import baseline
from genuine.train.calibrate import sigmoid
from genuine.train.data import PhotoSet, fingerprint, select
from genuine.train.layout import discover
from genuine.train.metrics import binary_metrics
from genuine.train.plots import save_plots
from genuine.train.report_build import build_report
from genuine.train.train import predict

ALIGNED = "aligned"  # `genuine evaluate aligned DATA`: the training-free baseline (train/baseline.py)


def evaluate(ckpt_path, data, split="test", device="cpu") -> tuple[dict, np.ndarray, np.ndarray, list[dict]]:
    """(report, labels, calibrated p(counterfeit), one row per photo for predictions.csv)."""
    ckpt = checkpoint.load(ckpt_path)
    meta = ckpt["meta"]
    if meta["preprocess"]["resize"] != RESIZE:
        raise checkpoint.CheckpointError(f"{ckpt_path}: preprocessing {meta['preprocess']['resize']!r} is not "
                                         f"this version's {RESIZE!r}")
    if "thresholds" not in meta:
        raise checkpoint.CheckpointError(f"{ckpt_path}: not calibrated (training did not finish); "
                                         f"run genuine train --resume")
    net = checkpoint.build_from(ckpt).to(torch.device(device))
    ds = discover(data)
    recs = select(ds, split)
    if not recs:
        raise UsageError(f"{ds.root}: no photos in the {split} split")
    photos = PhotoSet(recs, meta["preprocess"]["size"], meta["products"])
    pred = predict(net, photos, torch.device(device))
    y = photos.labels.numpy().astype(int)
    p = sigmoid(pred["logit"] / meta["calibration"]["temperature"])
    th = meta["thresholds"]
    same_data = fingerprint([r for r in ds.records if r.split in ("train", "val")]) == meta["data"]["fingerprint"]
    caveat = None
    if same_data and split in ("train", "val"):
        caveat = f"the {split} split was used for {'training' if split == 'train' else 'early stopping and calibration'}: optimistic"
    report, rows = build_report(photos.records, y, p, th, head={
        "checkpoint": str(ckpt_path), "data": str(ds.root), "split": split, "caveat": caveat,
        "same_data_as_training": same_data, "unreadable": photos.bad})
    if pred["product_prob"] is not None:
        report["product_accuracy"] = float((pred["product_prob"].argmax(1) == photos.products.numpy()).mean())
    return report, y, p, rows


def comparator_scores(model, data, split: str, products: list[str] | None = None, workers: int = 0):
    """(report, y, p, rows) for a comparator: a best.pt checkpoint or an exported ONNX file (runtime.OnnxModel).
    Every aligned face is judged by genuine.infer.judge.FaceJudge, the inspector's and the scan's own step, with
    the model's (or its fusion's) thresholds for every product: a product's own operating point needs a reference
    store of its genuine photos (genuine inspect / scan --templates STORE)."""
    from genuine.infer.templates import load_templates
    from genuine.infer.zones import templates_zones
    from genuine.train.backend import TorchComparator
    from genuine.train.face_data import FaceSet, refined_zones

    onnx_file = hasattr(model, "compare")
    backend = model if onnx_file else TorchComparator(model)
    meta, size = backend.meta, tuple(backend.face_size)
    ds = discover(data)
    recs = [r for r in select(ds, split) if not products or r.product in products]
    if not recs:
        raise UsageError(f"{ds.root}: no photos in the {split} split" + (f" of {', '.join(products)}" if products else ""))
    templates = load_templates(ds.root)
    # DATA's genuine train photos stand for a brand's genuine photos in the store: the inks' tolerances of the zone
    # checks and each product's genuine variation both come from them (aligned once).
    genuine = FaceSet.build(ds.root, [r for r in select(ds, "train") if r.label == "genuine"], templates, size,
                            workers=workers)
    fs = FaceSet.build(ds.root, recs, templates, size, workers=workers,
                       zones=refined_zones(templates_zones(templates), genuine))
    s_face = _variation_of(fs, genuine, meta, workers)
    judged = _judge_faces(backend, templates, fs, s_face, size)
    where = {id(r): k for k, r in enumerate(fs.records)}
    y = np.array([r.label == "counterfeit" for r in recs], int)
    p, pc, sv, verdicts, issues = np.full(len(recs), 0.5), np.full(len(recs), 0.5), np.full(len(recs), np.nan), [], {}
    cells: list[dict] = []
    for i, r in enumerate(recs):
        k = where.get(id(r))
        if k is None:
            verdicts.append(INCONCLUSIVE)
            cells.append({})
            continue
        res = judged[k]
        cells.append(_evidence_cells(res, s_face[k]))
        p[i], pc[i], sv[i] = res.p_counterfeit, res.evidence["comparator_p"], s_face[k]
        for code in res.quality.get("issues", []):
            issues[code] = issues.get(code, 0) + 1
        verdicts.append(res.verdict)
    fused = ~np.isnan(sv)
    th = meta["fusion"]["thresholds"] if fused.any() else meta["thresholds"]
    head = {**_head(model, meta, ds, recs, split, onnx_file), **_alignment(recs, fs), "quality_gate": issues}
    report, rows = build_report(recs, y, p, th, verdicts, head=head)
    blank = dict.fromkeys(EVIDENCE_COLUMNS, "")
    rows = [{**row, **blank, **c} for row, c in zip(rows, cells)]
    aligned = np.array([id(r) in where for r in recs])
    report["metrics_aligned_only"] = binary_metrics(y[aligned], p[aligned]) if aligned.any() else None
    both = fused.any() and 0 < y[fused].sum() < fused.sum()
    report["fusion"] = {"used": bool(fused.any()), "why_not": (meta.get("fusion") or {}).get("why"),
                        "photos_fused": int(fused.sum()), "photos_comparator_only": int(aligned.sum() - fused.sum()),
                        "comparator_only": binary_metrics(y, pc),
                        "variation_only_auroc_fused_photos": float(roc_auc_score(y[fused], sv[fused])) if both else None}
    report["zones"] = _zones_report(fs, meta)
    return report, y, p, rows


EVIDENCE_COLUMNS = ("comparator_p", "variation") + tuple(f"{z}_{k}" for z in ("barcode", "text", "colour")
                                                          for k in ("state", "score"))


def _evidence_cells(res, s_var: float) -> dict:
    """A judged photo's evidence for predictions.csv: what each scorer said, so a mistake can be traced to one."""
    out = {"comparator_p": round(float(res.evidence["comparator_p"]), 6),
           "variation": "" if np.isnan(s_var) else round(float(s_var), 4)}
    for f in res.evidence.get("zones", {}).get("findings", []):
        out[f"{f['zone']}_state"], out[f"{f['zone']}_score"] = f["state"], round(float(f["score"]), 4)
    return out


def _zones_report(fs, meta: dict) -> dict:
    """What each zone check found on the aligned photos, by label and defect family (fail / pass / unread)."""
    from genuine.infer.zones import findings_of

    fit = meta.get("zones") or {"why": "this model carries no zone weights (exported before zone checks existed)"}
    out: dict = {"weighed": bool(fit.get("used")), "why_not": fit.get("why"), "by_family": {}}
    for k, r in enumerate(fs.records):
        family = r.extra.get("defect") or ("genuine" if r.label == "genuine" else "counterfeit")
        for f in findings_of(fs.zones[k]) if fs.zones is not None else []:
            cell = out["by_family"].setdefault(family, {}).setdefault(f.zone, {"fail": 0, "pass": 0, "unread": 0})
            cell[f.state] += 1
    return out


def _variation_of(fs, genuine, meta: dict, workers: int) -> np.ndarray:
    """Each aligned face's genuine-variation score from the genuine faces of its product, where the model fuses with
    it; NaN elsewhere."""
    if not ((meta.get("fusion") or {}).get("used") and len(fs)):
        return np.full(len(fs), np.nan)
    from genuine.train.variation_fusion import variation_scores

    return variation_scores(genuine, fs, workers)


def _judge_faces(backend, templates, fs, s_face: np.ndarray, size) -> list:
    """Results of every aligned face through FaceJudge, in batches of 32, with the inspector's own quality gate."""
    from genuine.infer.judge import Face, FaceJudge
    from genuine.infer.zones import findings_of

    judge = FaceJudge(backend, templates, calibrate_products=False)
    key = {t.product: t.key for t in templates.templates if not t.view}
    faces = []
    for k, r in enumerate(fs.records):
        _, q = face_model_input(fs.faces[k], fs.density[k], size, backend.meta.get("quality"))
        var = None if np.isnan(s_face[k]) else (float(s_face[k]), None)
        faces.append(Face(r.rel, fs.faces[k], q, {"product": r.product, "template": key[r.product], "quality": None},
                          key[r.product], var, variation_done=True,
                          findings=findings_of(fs.zones[k]) if fs.zones is not None else None))
    return [res for s in range(0, len(faces), 32) for res in judge.score_faces(faces[s:s + 32])]


def _head(model, meta: dict, ds, recs, split: str, onnx_file: bool) -> dict:
    """What was scored, on which data, and whether that data was used in training (then: optimistic)."""
    same_data = fingerprint([r for r in ds.records if r.split in ("train", "val") and r.product in meta["products"]]
                            ) == meta["data"]["fingerprint"]
    caveat = None
    trained = [r for r in recs if r.product in meta["products"]]   # photos of excluded products were never used
    if same_data and split in ("train", "val") and trained:
        caveat = (f"the {split} split was used for "
                  f"{'training' if split == 'train' else 'early stopping and calibration'}: optimistic")
    return {"checkpoint": str(getattr(model, "name", None) or meta.get("path", "")), "scorer": "comparator"
            + (f" (ONNX, sha256 {model.sha256})" if onnx_file else " (checkpoint)"),
            "data": str(ds.root), "split": split, "caveat": caveat, "same_data_as_training": same_data,
            "products_not_trained_on": sorted({r.product for r in recs} - set(meta["products"]))}


def _alignment(recs, fs) -> dict:
    return {"unreadable": [r.rel for r, w in fs.not_aligned if w.startswith("unreadable")],
            "not_aligned": [{"path": r.rel, "label": r.label, "defect": r.extra.get("defect", ""), "reason": w}
                            for r, w in fs.not_aligned],
            "not_aligned_policy": "p_counterfeit=0.5 and verdict INCONCLUSIVE; counted in every metric",
            "alignment": {"photos": len(recs), "aligned": len(fs),
                          "reasons": dict(Counter(w for _, w in fs.not_aligned))}}


def _f(x, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def write(report: dict, y, p, rows: list[dict], out: Path) -> None:
    """report.json, plots and predictions.csv (sortable per photo: subsets, mistakes, audits) into out/."""
    out.mkdir(parents=True, exist_ok=True)
    report["plots"] = save_plots(y, p, report, out)
    write_text(out / "report.json", json.dumps(report, indent=2) + "\n")
    with atomic_write(out / "predictions.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def _zones_summary(zr: dict | None) -> None:
    """One line per zone: how often it failed, passed or could not be read, on genuine photos and on counterfeits."""
    if not zr or not zr["by_family"]:
        return
    how = "in the score" if zr["weighed"] else f"reported only: {zr['why_not']}"
    print(f"zone checks ({how}), fail/pass/unread:")
    for zone in ("barcode", "text", "colour"):
        cells = {fam: c[zone] for fam, c in zr["by_family"].items() if zone in c}
        if cells:
            print(f"  {zone:<8} " + "  ".join(f"{fam} {c['fail']}/{c['pass']}/{c['unread']}"
                                              for fam, c in sorted(cells.items(), key=lambda t: t[0] != "genuine")))


def summary(report: dict, split: str) -> None:
    m, op = report["metrics"], report["operating_point"]
    print(f"{split}: {m['n']} photos ({m['n_genuine']} genuine, {m['n_counterfeit']} counterfeit)")
    if report["caveat"]:
        print(f"CAVEAT: {report['caveat']}")
    ci = m.get("auroc_ci95_items")
    within = f" (95% over {m['items']} items: {ci[0]:.3f}-{ci[1]:.3f})" if ci else ""
    print(f"AUROC {_f(m['auroc'])}{within}  TPR@1%FPR {_f(m['tpr_at_fpr_1pct'], 3)}  TPR@5%FPR {_f(m['tpr_at_fpr_5pct'], 3)}  "
          f"ECE {_f(m['ece'])}  Brier {_f(m['brier'])}  accuracy@0.5 {_f(m['accuracy'])}")
    print(f"operating point: coverage {_f(op['coverage'], 3)}, false alarms {_f(op['false_alarm_rate'], 3)}, "
          f"missed {_f(op['miss_rate'], 3)}, accuracy when decided {_f(op['accuracy_when_decided'], 3)}")
    fu = report.get("fusion") or {}
    if fu.get("used"):
        print(f"fused with each product's genuine variation on {fu['photos_fused']} photos "
              f"({fu['photos_comparator_only']} comparator only): comparator alone AUROC "
              f"{_f(fu['comparator_only']['auroc'])}, variation alone {_f(fu['variation_only_auroc_fused_photos'])}")
    elif fu.get("why_not"):
        print(f"comparator alone (no fusion with genuine variation: {fu['why_not']})")
    for lab, row in report["confusion"].items():
        print(f"  {lab:<12}" + "  ".join(f"{v} {n}" for v, n in row.items()))
    _zones_summary(report.get("zones"))
    if report["per_defect"]:
        print("per defect family (its counterfeits vs all genuine):")
        for fam, r in report["per_defect"].items():
            print(f"  {fam:<16} AUROC {_f(r['auroc'])}  detected {_f(r['detected'], 3)}  missed {_f(r['missed'], 3)}")


def main(args) -> int:
    if args.checkpoint == ALIGNED:  # the training-free baseline: no checkpoint, genuine train photos as the model
        print(f"training-free aligned baseline on {args.data} (no checkpoint: median and spread of aligned "
              f"genuine train photos per product)")
        report, y, p, rows = baseline.evaluate(args.data, args.split, workers=args.workers)
        name = Path(args.data).resolve().name
        out = Path(args.out) if args.out else Path("runs") / f"eval-aligned-{name}-{args.split}"
    else:
        products = [p for p in (args.products or "").split(",") if p] or None
        path = Path(args.checkpoint)
        if path.is_dir() and (path / "best.pt").is_file():
            path = path / "best.pt"   # a run folder, as users type it
        if path.suffix.lower() == ".onnx":
            from genuine.infer.runtime import OnnxModel

            model = OnnxModel(path, threads=args.threads or 0)
            if not model.is_comparator:
                raise checkpoint.CheckpointError(f"{path}: evaluating a whole-photo ONNX model is not supported; "
                                                 f"evaluate its best.pt")
            print(f"evaluating the exported file {path} (sha256 {model.sha256[:16]}...)")
            meta = model.meta
            report, y, p, rows = comparator_scores(model, args.data, args.split, products, args.workers)
        else:
            ckpt = checkpoint.load(path)
            meta = ckpt["meta"]
            if is_comparator(ckpt["meta"]):
                ckpt["meta"]["path"] = str(path)
                report, y, p, rows = comparator_scores(ckpt, args.data, args.split, products,
                                                       args.workers)
            else:
                report, y, p, rows = evaluate(path, args.data, args.split, args.device)
        name = f"eval-{args.split}" if path.stem == "best" else f"eval-{path.stem}-{args.split}"
        out = Path(args.out) if args.out else path.parent / name
    if args.compare_baseline and args.checkpoint != ALIGNED:
        b, *_ = baseline.evaluate(args.data, args.split, workers=args.workers)
        report["compared_with_aligned_baseline"] = {
            "auroc": b["metrics"]["auroc"], "tpr_at_fpr_1pct": b["metrics"]["tpr_at_fpr_1pct"],
            "per_defect": {k: v["auroc"] for k, v in b["per_defect"].items()}}
    write(report, y, p, rows, out)
    summary(report, args.split)
    if "compared_with_aligned_baseline" in report:
        c, m = report["compared_with_aligned_baseline"], report["metrics"]
        print(f"training-free aligned baseline on the same photos: AUROC {_f(c['auroc'])} (this model "
              f"{_f(m['auroc'])}); per family: " + ", ".join(
                  f"{k} {_f(v, 3)}/{_f(report['per_defect'].get(k, {}).get('auroc'), 3)}" for k, v in c["per_defect"].items()))
    if "not_aligned" in report:
        n = len(report["not_aligned"])
        print(f"not aligned: {n} photo(s), INCONCLUSIVE, scored p=0.5 in every metric"
              + (f" ({', '.join(f'{k} {v}' for k, v in report['alignment']['reasons'].items())})" if n else ""))
    if args.checkpoint != ALIGNED:
        if warning := weak_model_warning(meta):
            print(f"WARNING: {warning}", file=sys.stderr)
    if why := not_validated(report["thresholds"]):
        print(f"WARNING: the model's calibration is {why}: the photos it decides without a fusion are all "
              f"INCONCLUSIVE", file=sys.stderr)
    print(f"Results saved to {out / 'report.json'} (+ predictions.csv, {len(report['plots'])} plots)")
    return 0
