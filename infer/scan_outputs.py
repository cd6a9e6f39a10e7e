"""A scan's shareable outputs, rebuilt from results.jsonl: results.csv, summary.json, report.html.

    rows = merge(records)                  # one row per unique photo (or bad file), all its paths
    write_outputs(run_dir, records, info)  # -> summary dict
"""
from __future__ import annotations

import csv
import json
import platform
import time
from collections import Counter, defaultdict
from pathlib import Path

import onnxruntime

from genuine.infer.atomic import atomic_write, write_text
from genuine.infer.verdict import ERROR

CSV_COLUMNS = ["path", "verdict", "authenticity", "p_counterfeit", "product", "product_confidence", "quality_issues",
               "reason", "error_kind", "sha256", "duplicate_paths", "comparator_p", "variation_score", "fused",
               "barcode", "text", "colour"]


def merge(records: list[dict]) -> list[dict]:
    """Fold the journal into rows: photo records carry their duplicate paths; each bad file is a row."""
    rows: dict[str, dict] = {}
    extra = defaultdict(list)
    for r in records:
        if r["type"] == "photo":
            rows.setdefault(r["sha256"], {**r, "paths": [r["path"]]})
        elif r["type"] == "path":
            extra[r["sha256"]].append(r["path"])
        else:
            rows.setdefault(f"error:{r['path']}", {**r, "verdict": ERROR, "paths": [r["path"]], "reason": r["error"]})
    for sha, paths in extra.items():
        if sha in rows:
            rows[sha]["paths"] += [p for p in paths if p not in rows[sha]["paths"]]
    for r in rows.values():   # a photo's row names its paths in order, whichever worker or engine scored it first
        r["paths"] = sorted(r["paths"])
    return sorted(rows.values(), key=lambda r: r["paths"][0])


def write_csv(path: Path, rows: list[dict]) -> None:
    with atomic_write(path, "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=CSV_COLUMNS, lineterminator="\n")
        w.writeheader()
        for r in rows:
            w.writerow({"path": r["paths"][0], "verdict": r["verdict"], "authenticity": r.get("authenticity"),
                        "p_counterfeit": r.get("p_counterfeit"), "product": r.get("product"),
                        "product_confidence": r.get("product_confidence"),
                        "quality_issues": " ".join((r.get("quality") or {}).get("issues", [])),
                        "reason": r.get("reason", ""), "error_kind": r.get("error_kind"), "sha256": r.get("sha256"),
                        "duplicate_paths": " | ".join(r["paths"][1:]),
                        **{k: (r.get("evidence") or {}).get(k) for k in ("comparator_p", "variation_score", "fused")},
                        **zone_cells(r.get("evidence"))})


def zone_cells(evidence: dict | None) -> dict:
    """One column per zone check, to sort and filter a scan by: its state, and its message where it failed."""
    found = ((evidence or {}).get("zones") or {}).get("findings") or []
    return {f["zone"]: f["state"] + (f": {f['message']}" if f["state"] == "fail" else "") for f in found}


def product_calibrations(rows: list[dict]) -> dict:
    """product -> the thresholds its photos were judged by (evidence["thresholds"]: source, thresholds and, for a
    product calibrated from its own genuine photos, the calibration's evidence); a product's own calibration is
    shown over the model's where its photos met both. Several templates of one product: "product [template]"."""
    found: dict[tuple[str, str | None], dict] = {}
    for r in rows:
        th = (r.get("evidence") or {}).get("thresholds")
        if r.get("product") and isinstance(th, dict):
            cal = th.get("calibration")
            key = (r["product"], cal.get("template") if isinstance(cal, dict) else None)
            if key not in found or (th.get("source") == "product" and found[key].get("source") != "product"):
                found[key] = th
    per = defaultdict(list)
    for (product, template), th in found.items():
        per[product].append((template, th))
    out = {}
    for product, items in sorted(per.items()):
        own = [(t, th) for t, th in items if th.get("source") == "product"]
        items = own or items[:1]
        for template, th in items:
            out[product if len(items) == 1 else f"{product} [{template}]"] = th
    return out


def summarise(rows: list[dict], info: dict) -> dict:
    from genuine import __version__

    counts = Counter(r["verdict"] for r in rows)
    per_product = defaultdict(Counter)
    for r in rows:
        if r["verdict"] != ERROR:
            per_product[r.get("product") or "-"][r["verdict"]] += 1
    return {"total_photos": sum(len(r["paths"]) for r in rows), "unique_photos": sum(1 for r in rows if r["verdict"] != ERROR),
            "duplicates": sum(len(r["paths"]) - 1 for r in rows), "counts": dict(counts),
            "errors": dict(Counter(r["error_kind"] for r in rows if r["verdict"] == ERROR)),
            "per_product": {p: dict(c) for p, c in sorted(per_product.items())},
            "product_calibrations": product_calibrations(rows), **info,
            "finished": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
            "versions": {"genuine": __version__, "onnxruntime": onnxruntime.__version__, "python": platform.python_version()}}


def write_outputs(run_dir: Path, records: list[dict], info: dict) -> dict:
    rows = merge(records)
    write_csv(run_dir / "results.csv", rows)
    summary = summarise(rows, info)
    write_text(run_dir / "summary.json", json.dumps(summary, indent=2) + "\n")
    from genuine.infer.report import write_html

    write_html(run_dir / "report.html", rows, summary, run_dir)
    return summary
