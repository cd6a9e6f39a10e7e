"""`genuine export`: checkpoint -> one self-describing ONNX file, checked against torch right away.

    genuine export checkpoints/synthpack/best.pt --out checkpoints/synthpack/model.onnx
    genuine export checkpoints/synthpack/best.pt --out model.onnx --int8 --calib datasets/synthpack

The graph takes uint8 RGB (N, H, W, 3) and contains normalisation and the calibration
temperature; its metadata_props["genuine"] (JSON) holds everything else the runtime needs.
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn

from infer.quality import DEFAULTS as QUALITY_LIMITS
from infer.runtime import META_KEY, OnnxModel, weak_model_warning
from train import checkpoint
from train.data import PhotoSet, select
from train.layout import discover

FORMAT = "genuine-onnx/1"
PARITY_TOL = 1e-4
PRODUCT_MIN_CONFIDENCE = 0.5  # below: "product not covered by this model"


class ExportError(RuntimeError):
    """Export refused to write a model it could not verify; the message says why."""


class Deployable(nn.Module):
    """What the handheld runs: calibrated probability, embedding, heatmap, product probabilities."""

    def __init__(self, net, temperature: float):
        super().__init__()
        self.net, self.t = net, float(temperature)

    def forward(self, x):
        out = self.net(x)
        res = [torch.sigmoid(out["logit"] / self.t), out["embedding"], out["heatmap"]]
        if "product_logits" in out:
            res.append(out["product_logits"].softmax(dim=1))
        return tuple(res)


def _names(n_products: int) -> list[str]:
    return ["p_counterfeit", "embedding", "heatmap"] + (["product_prob"] if n_products > 1 else [])


def metadata(meta: dict, int8: bool, parity: float) -> dict:
    from genuine import __version__

    return {"format": FORMAT, "input": meta["preprocess"], "labels": meta["labels"], "products": meta["products"],
            "score": "p_counterfeit: calibrated probability of counterfeit (authenticity = 1 - p)",
            "thresholds": meta["thresholds"], "calibration": meta["calibration"], "backbone": meta["backbone"],
            "data": meta["data"], "metrics": meta["metrics"], "weights": meta["weights"],
            "product_min_confidence": PRODUCT_MIN_CONFIDENCE, "quality": dict(QUALITY_LIMITS),
            "int8": int8, "parity_max_abs_diff": parity,
            "exported": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()), "genuine_version": __version__,
            "training_versions": meta["versions"]}


def to_onnx(net, meta: dict) -> bytes:
    size = meta["preprocess"]["size"]
    names = _names(len(meta["products"]))
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the top-k size is a constant for a fixed input size: intended
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False on purpose: no onnxscript needed
        torch.onnx.export(Deployable(net, meta["calibration"]["temperature"]).eval(),
                          (torch.zeros(1, size, size, 3, dtype=torch.uint8),), buf, dynamo=False, opset_version=17,
                          input_names=["image"], output_names=names,
                          dynamic_axes={"image": {0: "batch"}, **{n: {0: "batch"} for n in names}})
    return buf.getvalue()


def with_metadata(model_bytes: bytes, meta: dict) -> bytes:
    m = onnx.load_from_string(model_bytes)
    del m.metadata_props[:]
    m.metadata_props.add(key=META_KEY, value=json.dumps(meta))
    m.doc_string = "genuine authenticity model; metadata_props['genuine'] holds input, thresholds and metrics"
    onnx.checker.check_model(m, full_check=True)
    return m.SerializeToString()


def parity_photos(meta: dict, calib: str | None, limit: int = 200) -> PhotoSet:
    """Real validation photos (the checkpoint's own val split when still on disk), preprocessed by infer/."""
    root = calib or meta["data"]["root"]
    if not Path(root).is_dir():
        raise ExportError(f"no photos to check parity on: {root} is gone; pass --calib DATA")
    ds = discover(root)
    recs = select(ds, "val") or select(ds, "train")
    recs = [recs[i] for i in sorted(np.random.default_rng(0).permutation(len(recs))[:limit])]
    return PhotoSet(recs, meta["preprocess"]["size"], meta["products"])


def check_parity(net, meta, model_bytes: bytes, images: np.ndarray) -> float:
    with torch.no_grad():
        ref = Deployable(net, meta["calibration"]["temperature"])(torch.from_numpy(images))[0].numpy()
    got = OnnxModel.from_bytes(model_bytes, threads=2).run(images)["p_counterfeit"]
    return float(np.abs(ref - got).max())


def write(out: Path, model_bytes: bytes, meta: dict, why_fp32: str | None) -> str:
    out.parent.mkdir(parents=True, exist_ok=True)
    out.write_bytes(model_bytes)
    sha = hashlib.sha256(model_bytes).hexdigest()
    from train.modelcard import model_card

    out.with_suffix(".md").write_text(model_card(out, meta, sha, len(model_bytes), why_fp32))
    return sha


def main(args) -> int:
    ckpt = checkpoint.load(args.checkpoint)
    meta = ckpt["meta"]
    if "thresholds" not in meta:
        raise ExportError(f"{args.checkpoint}: not calibrated (training did not finish); run genuine train --resume")
    net = checkpoint.build_from(ckpt)
    out = Path(args.out)
    val = parity_photos(meta, args.calib)
    fp32 = to_onnx(net, meta)
    diff = check_parity(net, meta, with_metadata(fp32, metadata(meta, False, None)), val.images)
    print(f"parity onnxruntime vs torch on {len(val)} real photos: max |dp| = {diff:.2e} (limit {PARITY_TOL:.0e})")
    if not diff <= PARITY_TOL:
        raise ExportError(f"ONNX output differs from torch by {diff:.2e} > {PARITY_TOL:.0e}; nothing written")
    info = metadata(meta, False, diff)
    final, int8, why = with_metadata(fp32, info), False, None
    if args.int8:
        from train.quantize import quantize_gated

        q, why, gate = quantize_gated(final, meta, args.calib or meta["data"]["root"], val)
        if q is not None:
            info = {**metadata(meta, True, diff), "int8_gate": gate}
            final, int8 = with_metadata(q, info), True
        else:
            print(f"INT8 rejected, keeping FP32: {why}")
    sha = write(out, final, info, why)
    print(f"Results saved to {out} ({'INT8' if int8 else 'FP32'}, {len(final) / 1e6:.1f} MB, sha256 {sha[:16]}...) "
          f"and model card {out.with_suffix('.md')}")
    if warning := weak_model_warning(info):
        print(f"WARNING: {warning}", file=sys.stderr)
    print(f"Next: genuine inspect {out} PHOTO.jpg --heatmap heatmap.png")
    return 0

