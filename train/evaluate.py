"""`genuine evaluate`: honest numbers for a checkpoint on a split, overall, per product, per defect family.

    genuine evaluate checkpoints/synthpack/best.pt datasets/synthpack --split test
    genuine evaluate aligned datasets/synthpack --split test     # the training-free baseline (train/baseline.py)

Both paths score, then share build_report(), write() and summary(): every model lands in the same table.
"""
from __future__ import annotations

import csv
import json
from collections import defaultdict
from pathlib import Path

import numpy as np
import torch

from infer.preprocess import RESIZE
from infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT, VERDICTS, decide
from train import checkpoint
from train.calibrate import rates, sigmoid
from train.data import PhotoSet, fingerprint, select
from train.layout import discover
from train.metrics import accuracy_coverage, binary_metrics
from train.plots import save_plots
from train.train import predict

WORST = 25  # most confident mistakes listed in the report
ALIGNED = "aligned"  # `genuine evaluate aligned DATA`: the training-free baseline (train/baseline.py)


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
        "metrics": binary_metrics(y, p), "thresholds": th, "operating_point": _rates(verdicts, y),
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


def family(r):
    return r.extra.get("defect") or None


def product(r):
    return r.product


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
        raise SystemExit(f"{ds.root}: no photos in the {split} split")
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


def _f(x, digits: int = 4) -> str:
    return "n/a" if x is None else f"{x:.{digits}f}"


def write(report: dict, y, p, rows: list[dict], out: Path) -> None:
    """report.json, plots and predictions.csv (sortable per photo: subsets, mistakes, audits) into out/."""
    out.mkdir(parents=True, exist_ok=True)
    report["plots"] = save_plots(y, p, report, out)
    (out / "report.json").write_text(json.dumps(report, indent=2) + "\n")
    with open(out / "predictions.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)


def summary(report: dict, split: str) -> None:
    m, op = report["metrics"], report["operating_point"]
    print(f"{split}: {m['n']} photos ({m['n_genuine']} genuine, {m['n_counterfeit']} counterfeit)")
    if report["caveat"]:
        print(f"CAVEAT: {report['caveat']}")
    print(f"AUROC {_f(m['auroc'])}  TPR@1%FPR {_f(m['tpr_at_fpr_1pct'], 3)}  TPR@5%FPR {_f(m['tpr_at_fpr_5pct'], 3)}  "
          f"ECE {_f(m['ece'])}  Brier {_f(m['brier'])}  accuracy@0.5 {_f(m['accuracy'])}")
    print(f"operating point: coverage {_f(op['coverage'], 3)}, false alarms {_f(op['false_alarm_rate'], 3)}, "
          f"missed {_f(op['miss_rate'], 3)}, accuracy when decided {_f(op['accuracy_when_decided'], 3)}")
    for lab, row in report["confusion"].items():
        print(f"  {lab:<12}" + "  ".join(f"{v} {n}" for v, n in row.items()))
    if report["per_defect"]:
        print("per defect family (its counterfeits vs all genuine):")
        for fam, r in report["per_defect"].items():
            print(f"  {fam:<16} AUROC {_f(r['auroc'])}  detected {_f(r['detected'], 3)}  missed {_f(r['missed'], 3)}")


def main(args) -> int:
    if args.checkpoint == ALIGNED:  # the training-free baseline: no checkpoint, genuine train photos as the model
        from train import baseline

        print(f"training-free aligned baseline on {args.data} (no checkpoint: median and spread of aligned "
              f"genuine train photos per product)")
        report, y, p, rows = baseline.evaluate(args.data, args.split, workers=getattr(args, "workers", 0))
        name = Path(args.data).resolve().name
        out = Path(args.out) if args.out else Path("runs") / f"eval-aligned-{name}-{args.split}"
    else:
        report, y, p, rows = evaluate(args.checkpoint, args.data, args.split, args.device)
        out = Path(args.out) if args.out else Path(args.checkpoint).parent / f"eval-{args.split}"
    write(report, y, p, rows, out)
    summary(report, args.split)
    if "not_aligned" in report:
        n = len(report["not_aligned"])
        print(f"not aligned: {n} photo(s), INCONCLUSIVE, scored p=0.5 in every metric"
              + (f" ({', '.join(f'{k} {v}' for k, v in report['alignment']['reasons'].items())})" if n else ""))
    print(f"Results saved to {out / 'report.json'} (+ predictions.csv, {len(report['plots'])} plots)")
    return 0
