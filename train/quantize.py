"""Static INT8 quantization (QDQ, per-channel) with an accuracy gate.

Dynamic quantization is 4-10x slower for these CNNs on CPU (ConvInteger), so only
static QDQ with real calibration photos is offered. The quantized model is kept only
if validation AUROC drops by at most 0.005 and at most 1% of verdicts change.

    q_bytes, why, gate = quantize_gated(fp32_bytes, meta, "datasets/synthpack", val_set)
"""
from __future__ import annotations

import tempfile
import time
from pathlib import Path

import numpy as np
from onnxruntime.quantization import CalibrationDataReader, QuantFormat, QuantType, quantize_static
from onnxruntime.quantization.shape_inference import quant_pre_process

from infer.runtime import OnnxModel
from infer.verdict import decide
from train.data import PhotoSet, select
from train.layout import discover
from train.metrics import binary_metrics

MAX_AUROC_DROP = 0.005
MAX_VERDICT_CHANGE = 0.01
CALIB_PHOTOS = 128


class _Reader(CalibrationDataReader):
    def __init__(self, images: np.ndarray, name: str, batch: int = 8):
        self.batches = iter([{name: images[i:i + batch]} for i in range(0, len(images), batch)])

    def get_next(self):
        return next(self.batches, None)


def _latency_ms(model: OnnxModel, image: np.ndarray, n: int = 20) -> float:
    model.run(image)
    t = []
    for _ in range(n):
        t0 = time.perf_counter()
        model.run(image)
        t.append(time.perf_counter() - t0)
    return 1000 * float(np.median(t))


def quantize_gated(fp32: bytes, meta: dict, calib_root: str, val: PhotoSet):
    """Return (int8 bytes or None, reason when refused, gate numbers)."""
    ds = discover(calib_root)
    recs = select(ds, "train")
    recs = [recs[i] for i in sorted(np.random.default_rng(0).permutation(len(recs))[:CALIB_PHOTOS])]
    calib = PhotoSet(recs, meta["preprocess"]["size"], meta["products"]).images
    with tempfile.TemporaryDirectory() as tmp:
        src, pre, dst = Path(tmp, "fp32.onnx"), Path(tmp, "pre.onnx"), Path(tmp, "int8.onnx")
        src.write_bytes(fp32)
        quant_pre_process(str(src), str(pre), skip_symbolic_shape=True)
        quantize_static(str(pre), str(dst), _Reader(calib, "image"), quant_format=QuantFormat.QDQ,
                        per_channel=True, activation_type=QuantType.QUInt8, weight_type=QuantType.QInt8)
        q = dst.read_bytes()
    m32, m8 = OnnxModel.from_bytes(fp32, threads=1), OnnxModel.from_bytes(q, threads=1)
    p32 = m32.run(val.images)["p_counterfeit"]
    p8 = m8.run(val.images)["p_counterfeit"]
    y = val.labels.numpy().astype(int)
    a32, a8 = binary_metrics(y, p32)["auroc"], binary_metrics(y, p8)["auroc"]
    th = meta["thresholds"]
    changed = float(np.mean([decide(float(a), th) != decide(float(b), th) for a, b in zip(p32, p8)]))
    one = val.images[:1]
    gate = {"val_photos": int(len(y)), "auroc_fp32": a32, "auroc_int8": a8, "verdicts_changed": changed,
            "max_abs_dp": float(np.abs(p32 - p8).max()), "size_ratio": len(q) / len(fp32),
            "latency_ms_fp32": _latency_ms(m32, one), "latency_ms_int8": _latency_ms(m8, one)}
    print(f"INT8 gate on {len(y)} val photos: AUROC {a32:.4f} -> {a8:.4f}, verdicts changed {changed:.1%}, "
          f"size x{gate['size_ratio']:.2f}, latency {gate['latency_ms_fp32']:.1f} -> {gate['latency_ms_int8']:.1f} ms")
    why = gate_decision(gate)
    return (None if why else q), why, gate


def gate_decision(gate: dict) -> str | None:
    """Why the INT8 model must not ship, or None when it may."""
    a32, a8 = gate["auroc_fp32"], gate["auroc_int8"]
    if a32 is not None and a8 is not None and a32 - a8 > MAX_AUROC_DROP:
        return f"validation AUROC drops {a32 - a8:.4f} > {MAX_AUROC_DROP}"
    if gate["verdicts_changed"] > MAX_VERDICT_CHANGE:
        return f"{gate['verdicts_changed']:.1%} of validation verdicts change (> {MAX_VERDICT_CHANGE:.0%})"
    return None
