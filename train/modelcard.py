"""Model card written beside every exported model (Markdown)."""
from __future__ import annotations

from pathlib import Path

from genuine.infer.contract import is_comparator, validation_text, weak_model_warning


def _fmt(x, digits=4):
    return "n/a" if x is None else (f"{x:.{digits}f}" if isinstance(x, float) else str(x))


def _input_line(meta: dict) -> str:
    inp, t = meta["input"], meta["calibration"]["temperature"]
    if is_comparator(meta):
        w, h = inp["face_size"]
        return (f"- input: two uint8 RGB {w}x{h} images, the photo rectified onto its product's template "
                f"({inp['rectify']['keypoints']}) and the template; normalisation and temperature ({t:.3f}) are "
                f"inside the graph. A product needs only its template: {', '.join(meta.get('products', []))} were "
                f"in training, others are compared with their template alone")
    return (f"- input: uint8 RGB {inp['size']}x{inp['size']}, {inp['resize']} (pad {inp['pad_value']}); "
            f"normalisation and temperature ({t:.3f}) are inside the graph")


def _fusion_lines(meta: dict) -> list[str]:
    fu = meta.get("fusion")
    if not isinstance(fu, dict) or meta.get("arch") != "comparator":
        return []
    if not fu.get("used"):
        return ["## Fusion with genuine photos",
                f"- none: {fu.get('why', 'not fitted')}; the comparator decides alone.", ""]
    v, t = fu["val"], fu["thresholds"]
    return ["## Fusion with genuine photos",
            f"- for products with at least {fu.get('min_photos', 5)} genuine photos in the reference store: logistic "
            f"regression on [comparator logit, genuine-variation score], weights {fu['coef'][0]:.3f}, "
            f"{fu['coef'][1]:.3f}, intercept {fu['intercept']:.3f}, fitted on {v['photos']} validation photos",
            f"- validation AUROC: comparator {_fmt(v['comparator_auroc'])}, variation {_fmt(v['variation_auroc'])}, "
            f"fused {_fmt(v['auroc'])} (TPR at 1% FPR {_fmt(v['tpr_at_fpr_1pct'], 3)})",
            f"- its operating point: SUSPECT at p >= {t['threshold_suspect']:.4f}, GENUINE below "
            f"{t['threshold_genuine']:.4f}; coverage {_fmt(t['coverage'], 3)}, false alarms "
            f"{_fmt(t['false_alarm_rate'], 3)}, missed {_fmt(t['miss_rate'], 3)}", ""]


def _metrics_lines(meta: dict) -> list[str]:
    """Validation metrics and the operating point, with how it was validated."""
    val, th = meta["metrics"]["val"], meta["thresholds"]
    return [
        "## Validation metrics (calibrated)",
        "| AUROC | TPR at 1% FPR | TPR at 5% FPR | ECE | Brier | accuracy at 0.5 |",
        "| --- | --- | --- | --- | --- | --- |",
        f"| {_fmt(val['auroc'])} | {_fmt(val['tpr_at_fpr_1pct'], 3)} | {_fmt(val['tpr_at_fpr_5pct'], 3)} | "
        f"{_fmt(val['ece'])} | {_fmt(val['brier'])} | {_fmt(val['accuracy'])} |",
        "",
        "## Operating point",
        f"- SUSPECT when p(counterfeit) >= {th['threshold_suspect']:.4f} (target: at most {th['target_fpr']:.0%} of "
        f"genuine photos flagged); GENUINE when p < {th['threshold_genuine']:.4f} (target: at most "
        f"{th['target_miss']:.0%} of counterfeits passed); INCONCLUSIVE between.",
        f"- on validation: coverage {_fmt(th['coverage'], 3)}, false alarms {_fmt(th['false_alarm_rate'], 3)}, "
        f"missed {_fmt(th['miss_rate'], 3)}, accuracy when decided {_fmt(th['accuracy_when_decided'], 3)} ({th['note']})",
        f"- validation evidence: {validation_text(meta)}" + (
            "; what is not validated answers only INCONCLUSIVE" if "NOT VALIDATED" in validation_text(meta) else ""),
        "",
    ]


def _limitations(meta: dict) -> list[str]:
    return [
        "## Limitations",
        "- Validation numbers come from the split used for early stopping and calibration; run `genuine evaluate` "
        "on the test split for unbiased numbers.",
        "- Defect types absent from training may go undetected; " + (
            "a photo that cannot be rectified onto any template is INCONCLUSIVE with an instruction (not covered, "
            "package not found, too small, cut off), never scored."
            if is_comparator(meta) else
            f"photos of products not listed above are refused as 'not covered' only when product confidence is below "
            f"{meta['product_min_confidence']}."),
        "- Poor photos (blur, darkness, glare, distance) are answered INCONCLUSIVE by the quality gate, not judged.",
    ]


def model_card(path: Path, meta: dict, sha256: str, size: int, why_fp32: str | None) -> str:
    products = meta["products"]
    gate = meta.get("int8_gate")
    warning = weak_model_warning(meta)
    lines = [
        f"# Model card: {path.name}",
        "",
        *([f"**{warning}.**", ""] if warning else []),
        "## Intended use",
        "Screening photos of packaged goods for signs of counterfeiting, on a handheld or in batch, as an aid to a "
        "trained officer or analyst. A SUSPECT verdict is a reason to examine the item, not proof; GENUINE means no "
        "sign was found at the validated false-alarm rate. " + (
            "Any product with a template (artwork or aligned genuine photos); products outside the training list are "
            "compared with their template alone, with no measured accuracy until evaluated."
            if is_comparator(meta) else "Not for products outside the list below."),
        "",
        "## Model",
        f"- file: `{path.name}`, {size / 1e6:.1f} MB, sha256 `{sha256}`",
        f"- backbone: {meta['backbone']} ({'INT8 static QDQ' if meta['int8'] else 'FP32'}); pretrained weights: "
        f"{meta['weights'].get('source')}",
        _input_line(meta),
        f"- products ({len(products)}): {', '.join(products) if products else 'one'}",
        f"- exported {meta['exported']} by genuine {meta['genuine_version']}",
        "",
        "## Data",
        f"- trained on `{meta['data']['root']}`: {meta['data']['train_photos']} train and {meta['data']['val_photos']} "
        f"validation photos, item-level splits; fingerprint `{meta['data']['fingerprint'][:16]}...`",
        "",
        *_metrics_lines(meta),
        *_fusion_lines(meta),
        *_limitations(meta),
    ]
    if gate:
        lines += ["", "## INT8", f"- gate on {gate['val_photos']} val photos: AUROC {_fmt(gate['auroc_fp32'])} -> "
                  f"{_fmt(gate['auroc_int8'])}, verdicts changed {gate['verdicts_changed']:.1%}, size "
                  f"x{gate['size_ratio']:.2f}, latency {gate['latency_ms_fp32']:.1f} -> {gate['latency_ms_int8']:.1f} ms"]
    if why_fp32:
        lines += ["", "## INT8", f"- INT8 was requested and refused, FP32 kept: {why_fp32}"]
    return "\n".join(lines) + "\n"
