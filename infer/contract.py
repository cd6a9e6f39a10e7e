"""The contract between export (genuine.train) and the runtime (genuine.infer): everything both sides must agree
on, in one torch-free module that both import. Export writes what is named here; the runtime reads and checks it.

    from genuine.infer.contract import COMPARATOR_FORMAT, check_meta, weak_model_warning
    check_meta(meta, "model.onnx")   # ModelError naming the first key of the wrong shape

- the metadata key and format strings (a runtime refuses formats it does not know);
- the graph's input and output names;
- defaults the metadata may leave out: the product-confidence floor ("product not covered by this model") and the
  reference similarity floor of a fusion with a reference gallery;
- the weak-model rule, so every command that touches a model flags the same models;
- the shape of meta["fusion"] (a comparator fused with each product's genuine variation: fitted by
  genuine.train.variation_fusion, applied by genuine.infer.variation);
- meta["zones"] (the zone checks' weights: fitted by genuine.train.zone_fusion, applied by infer.zones.weighed);
- the shape of an operating point's genuine_logit (where validation's genuine photos lie in logit space: written by
  genuine.train.calibrate.operating_point, read by genuine.infer.product_calibration).
"""
from __future__ import annotations

import numpy as np

from genuine.infer.errors import GenuineError

META_KEY = "genuine"                    # onnx metadata_props key holding the JSON metadata
WHOLE_FORMAT = "genuine-onnx/1"         # whole-photo classifier: one input, WHOLE_INPUT
COMPARATOR_FORMAT = "genuine-onnx/2"    # comparator: photo face + template
SUPPORTED = (WHOLE_FORMAT, COMPARATOR_FORMAT)

WHOLE_INPUT = "image"
COMPARATOR_INPUTS = ("face", "template")          # uint8 (N, H, W, 3) at meta["input"]["face_size"]
COMPARATOR_OUTPUTS = ("p_counterfeit", "heatmap")


def is_comparator(meta: dict) -> bool:
    """A comparator's metadata (a checkpoint's or an exported file's): photo face + template in, genuine-onnx/2."""
    return isinstance(meta, dict) and meta.get("arch") == "comparator"


def whole_outputs(n_products: int) -> list[str]:
    """A whole-photo model's outputs; product probabilities only when it knows more than one product."""
    return ["p_counterfeit", "embedding", "heatmap"] + (["product_prob"] if n_products > 1 else [])


PRODUCT_MIN_CONFIDENCE = 0.5  # whole-photo models: below this product probability, "product not covered"
DEFAULT_SIM_FLOOR = 0.5       # reference gallery: below this similarity "product not covered", until calibrated
MAX_SIM_FLOOR = 0.999         # a calibrated floor this close to 1 means the embedding collapsed: refused
PRODUCT_MARGIN = 0.02         # best product's similarity or probability within this of the next: product unknown


WEAK_AUROC = 0.90  # below this validation AUROC a model is flagged as not ready wherever it is used


def fusion_of(meta: dict) -> dict:
    """The model's fusion with genuine variation when it is used, else {} (absent, or refused at training)."""
    fu = meta.get("fusion")
    return fu if isinstance(fu, dict) and fu.get("used") else {}


def validation_text(meta: dict) -> str:
    """How the model's verdicts were validated, in one line for reports shared without the model card."""
    def one(th: dict, what: str) -> str:
        v = (th or {}).get("validation")
        if not isinstance(v, dict):
            return f"{what}: calibrated before validation evidence was recorded"
        lo, hi = (v.get("auroc_ci95") or [None, None])[:2]
        how = (f"{v.get('genuine')} genuine and {v.get('counterfeit')} counterfeit validation photos of "
               f"{v.get('items')} items, AUROC {v.get('auroc'):.3f} (95% bootstrap interval {lo:.3f}-{hi:.3f})"
               if v.get("auroc") is not None and lo is not None else "no AUROC recorded")
        return f"{what}: {'validated' if v.get('validated') else 'NOT VALIDATED (' + str(v.get('why')) + ')'} on {how}"
    parts = [one(meta.get("thresholds"), "model")]
    if fusion_of(meta):
        parts.append(one(fusion_of(meta).get("thresholds"), "fused with genuine photos"))
    return "; ".join(parts)


def weak_model_warning(meta: dict) -> str | None:
    """One line saying a model is too weak to rely on (from its own validation metrics), or None."""
    val = (meta.get("metrics") or {}).get("val") or {}
    auroc, cov = val.get("auroc"), (meta.get("thresholds") or {}).get("coverage")
    fu = fusion_of(meta)
    fused = (fu.get("val") or {}).get("auroc")
    if auroc is None or auroc >= WEAK_AUROC:
        return None
    if fused is not None and fused >= WEAK_AUROC:
        return (f"weak model without genuine photos: validation AUROC {auroc:.3f} against templates alone (below "
                f"{WEAK_AUROC:.2f}), {fused:.3f} fused with each product's genuine photos. Add genuine photos of every "
                f"product you inspect (genuine references add --genuine-photos)")
    decided = f"; it decides only {cov:.0%} of validation photos, the rest INCONCLUSIVE" if cov is not None else ""
    also = f"; {fused:.3f} fused with each product's genuine photos" if fused is not None else ""
    return (f"weak model: validation AUROC {auroc:.3f} (below {WEAK_AUROC:.2f}){also}{decided}. "
            "Not ready for deployment; see its evaluation report")


class ModelError(GenuineError, ValueError):
    """A model file that cannot be used, with the file and the reason."""


def _number(v) -> bool:
    return isinstance(v, (int, float)) and not isinstance(v, bool) and np.isfinite(v)


def metadata(meta: dict, int8: bool, parity: float) -> dict:
    """The metadata an exported file carries (under META_KEY), from its checkpoint's: what the runtime reads and
    check_meta checks, written here so that both sides have one definition. A comparator records the side its
    faces are really warped at (infer.rectify.model_face_side), not a default."""
    import time

    from genuine import __version__
    from genuine.infer.quality import DEFAULTS as QUALITY_LIMITS

    if is_comparator(meta):
        from genuine.infer.keypoints import KP_VERSION
        from genuine.infer.preprocess import MEAN, STD
        from genuine.infer.rectify import model_face_side

        head = {"format": COMPARATOR_FORMAT, "arch": "comparator", "comparator": meta["comparator"],
                "input": {"face_size": meta["face_size"], "resize": "face_input", "mean": list(MEAN), "std": list(STD),
                          "input": "uint8 RGB NHWC: face (the photo rectified onto the template), template",
                          "rectify": {"keypoints": KP_VERSION, "face_side": model_face_side(meta["face_size"])}},
                "excluded_products": meta.get("excluded_products", []),
                "fusion": meta.get("fusion") or {"used": False, "why": "trained before fusion existed"},
                "zones": meta.get("zones") or {"used": False, "why": "trained before zone checks existed"}}
    else:
        head = {"format": WHOLE_FORMAT, "input": meta["preprocess"]}
    return {**head, "labels": meta["labels"], "products": meta["products"],
            "score": "p_counterfeit: calibrated probability of counterfeit (authenticity = 1 - p)",
            "thresholds": meta["thresholds"], "calibration": meta["calibration"], "backbone": meta["backbone"],
            "data": meta["data"], "metrics": meta["metrics"], "weights": meta["weights"],
            "product_min_confidence": PRODUCT_MIN_CONFIDENCE, "product_margin": PRODUCT_MARGIN,
            "quality": dict(QUALITY_LIMITS), "int8": int8, "parity_max_abs_diff": parity,
            "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "genuine_version": __version__,
            "training_versions": meta["versions"]}


def check_meta(meta, name: str) -> None:
    """Metadata of the shape the runtime reads, or ModelError naming the first key that is not: valid JSON of
    the wrong shape must fail as a model error, never as a crash mid-scan."""
    def bad(key: str, want: str):
        raise ModelError(f"{name}: genuine metadata {key} must be {want}; re-export the model with genuine export")

    if not isinstance(meta, dict):
        bad("", "a JSON object")
    if meta.get("format") not in SUPPORTED:
        raise ModelError(f"{name}: metadata format {meta.get('format')!r} is not one of {SUPPORTED}")
    inp = meta.get("input")
    if not isinstance(inp, dict):
        bad("'input'", "an object")
    if is_comparator(meta):
        fs = inp.get("face_size")
        if not (isinstance(fs, list) and len(fs) == 2 and all(isinstance(v, int) and 16 <= v <= 8192 for v in fs)):
            bad("input.face_size", "[width, height] in pixels")
    else:
        if not (isinstance(inp.get("size"), int) and 16 <= inp["size"] <= 8192):
            bad("input.size", "a size in pixels")
        if not isinstance(inp.get("resize"), str):
            bad("input.resize", "a string")
    th = meta.get("thresholds")
    if not isinstance(th, dict) or not all(_number(th.get(k)) for k in ("threshold_genuine", "threshold_suspect")):
        bad("'thresholds'", "an object with numeric threshold_genuine and threshold_suspect")
    _operating_point(th, name, "")
    for key, kind in (("products", list), ("quality", dict), ("metrics", dict), ("calibration", dict)):
        if meta.get(key) is not None and not isinstance(meta[key], kind):
            bad(repr(key), "a list" if kind is list else "an object")
    if not all(isinstance(p, str) for p in meta.get("products") or []):
        bad("'products'", "a list of names")
    if any(not _number(v) for v in (meta.get("quality") or {}).values()):
        bad("'quality'", "an object of numeric limits")
    fu = meta.get("fusion")
    if fu is not None and not (isinstance(fu, dict) and (not fu.get("used") or (
            isinstance(fu.get("coef"), list) and len(fu["coef"]) == 2 and all(_number(v) for v in fu["coef"])
            and _number(fu.get("intercept")) and isinstance(fu.get("thresholds"), dict)
            and all(_number(fu["thresholds"].get(k)) for k in ("threshold_genuine", "threshold_suspect"))))):
        bad("'fusion'", "an object with used, coef [2 numbers], intercept and thresholds")
    if fusion_of(meta):
        _operating_point(fu["thresholds"], name, "fusion ")


def _operating_point(th: dict, name: str, which: str) -> None:
    """A degenerate operating point decides on a knife's edge or not at all: refuse it with what to do."""
    if th["threshold_genuine"] >= th["threshold_suspect"]:
        raise ModelError(f"{name}: degenerate {which}operating point: genuine threshold {th['threshold_genuine']} "
                         f"is not below suspect threshold {th['threshold_suspect']} (no inconclusive band); "
                         f"recalibrate on validation photos (genuine train) and export again")
    v = th.get("validation")
    if v is not None and not (isinstance(v, dict) and isinstance(v.get("validated"), bool)):
        raise ModelError(f"{name}: genuine metadata {which}thresholds.validation must be an object with a boolean "
                         f"validated; re-export the model with genuine export")
    g = th.get("genuine_logit")   # where validation's genuine photos lie (per-product calibration); absent: older
    if g is not None and not (isinstance(g, dict) and _number(g.get("median")) and _number(g.get("scale"))
                              and g["scale"] > 0):
        raise ModelError(f"{name}: genuine metadata {which}thresholds.genuine_logit must be an object with a numeric "
                         f"median and a positive scale; re-export the model with genuine export")


