"""`genuine export`: checkpoint -> one self-describing ONNX file, checked against torch right away.

    genuine export checkpoints/synthpack/best.pt --out checkpoints/synthpack/model.onnx
    genuine export checkpoints/synthpack/best.pt --out model.onnx --int8 --calib datasets/synthpack

A comparator's graph takes two uint8 RGB (N, H, W, 3) inputs, `face` (the photo rectified onto the template) and
`template`, and returns p_counterfeit and the heatmap in the package's frame; a whole-photo model's takes one,
`image`. Normalisation and the calibration temperature are inside; metadata_props["genuine"] (JSON) holds
everything else the runtime needs. Every output is compared with torch on real validation photos before writing.
"""
from __future__ import annotations

import hashlib
import io
import json
import sys
import warnings
from pathlib import Path

import numpy as np
import onnx
import torch
import torch.nn as nn

from genuine.infer.atomic import write_bytes, write_text
from genuine.infer.contract import (
    COMPARATOR_INPUTS,
    COMPARATOR_OUTPUTS,
    META_KEY,
    WHOLE_INPUT,
    is_comparator,
    metadata,
    weak_model_warning,
    whole_outputs,
)
from genuine.infer.errors import GenuineError
from genuine.infer.runtime import OnnxModel
from genuine.train import checkpoint
from genuine.train.data import PhotoSet, sample, select
from genuine.train.layout import discover

PARITY_TOL = 1e-4


class ExportError(GenuineError, RuntimeError):
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


class DeployableComparator(nn.Module):
    """The comparator as the handheld runs it: calibrated probability and the heatmap on the template's grid."""

    def __init__(self, net, temperature: float):
        super().__init__()
        self.net, self.t = net, float(temperature)

    def forward(self, face, template):
        out = self.net(face, template)
        return torch.sigmoid(out["logit"] / self.t), out["heatmap"]


def to_onnx(net, meta: dict) -> bytes:
    if is_comparator(meta):
        w, h = meta["face_size"]
        x = torch.zeros(1, h, w, 3, dtype=torch.uint8)
        buf, names = io.BytesIO(), list(COMPARATOR_OUTPUTS)
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", torch.jit.TracerWarning)
            warnings.simplefilter("ignore", DeprecationWarning)
            torch.onnx.export(DeployableComparator(net, meta["calibration"]["temperature"]).eval(), (x, x), buf,
                              dynamo=False, opset_version=17, input_names=list(COMPARATOR_INPUTS), output_names=names,
                              dynamic_axes={n: {0: "batch"} for n in (*COMPARATOR_INPUTS, *names)})
        return buf.getvalue()
    size = meta["preprocess"]["size"]
    names = whole_outputs(len(meta["products"]))
    buf = io.BytesIO()
    with warnings.catch_warnings():  # the top-k size is a constant for a fixed input size: intended
        warnings.simplefilter("ignore", torch.jit.TracerWarning)
        warnings.simplefilter("ignore", DeprecationWarning)  # dynamo=False on purpose: no onnxscript needed
        torch.onnx.export(Deployable(net, meta["calibration"]["temperature"]).eval(),
                          (torch.zeros(1, size, size, 3, dtype=torch.uint8),), buf, dynamo=False, opset_version=17,
                          input_names=[WHOLE_INPUT], output_names=names,
                          dynamic_axes={n: {0: "batch"} for n in (WHOLE_INPUT, *names)})
    return buf.getvalue()


def with_metadata(model_bytes: bytes, meta: dict) -> bytes:
    m = onnx.load_from_string(model_bytes)
    del m.metadata_props[:]
    m.metadata_props.add(key=META_KEY, value=json.dumps(meta))
    m.doc_string = "genuine authenticity model; metadata_props['genuine'] holds input, thresholds and metrics"
    onnx.checker.check_model(m, full_check=True)
    return m.SerializeToString()


def _parity_records(meta: dict, calib: str | None, limit: int):
    """(dataset, up to `limit` of its val photos, else train photos): the checkpoint's own data when still on disk."""
    root = calib or meta["data"]["root"]
    if not Path(root).is_dir():
        raise ExportError(f"no photos to check parity on: {root} is gone; pass --calib DATA")
    ds = discover(root)
    recs = select(ds, "val") or select(ds, "train")
    return ds, sample(recs, limit)


def parity_photos(meta: dict, calib: str | None, limit: int = 200) -> PhotoSet:
    """Real validation photos, preprocessed by infer/."""
    _, recs = _parity_records(meta, calib, limit)
    return PhotoSet(recs, meta["preprocess"]["size"], meta["products"])


def comparator_pairs(meta: dict, calib: str | None, limit: int = 64) -> tuple[np.ndarray, np.ndarray]:
    """(faces, templates) of real validation photos rectified by infer/, at the model's input size."""
    from genuine.infer.templates import load_templates
    from genuine.train.face_data import FaceSet

    ds, recs = _parity_records(meta, calib, limit)
    fs = FaceSet.build(ds.root, recs, load_templates(ds.root), tuple(meta["face_size"]))
    if not len(fs):
        raise ExportError(f"no photo of {ds.root} could be rectified for the parity check")
    return fs.faces, fs.templates[fs.product]


def check_parity(net, meta, model_bytes: bytes, images) -> float:
    """Largest difference between torch and onnxruntime over every output the runtime uses."""
    if is_comparator(meta):
        faces, templates = images
        with torch.no_grad():
            ref = DeployableComparator(net, meta["calibration"]["temperature"])(torch.from_numpy(faces),
                                                                                 torch.from_numpy(templates))
        got = OnnxModel.from_bytes(model_bytes, threads=2).compare(faces, templates)
        return _worst(dict(zip(COMPARATOR_OUTPUTS, ref)), got)
    with torch.no_grad():
        ref = Deployable(net, meta["calibration"]["temperature"])(torch.from_numpy(images))
    got = OnnxModel.from_bytes(model_bytes, threads=2).run(images)
    return _worst(dict(zip(whole_outputs(len(meta["products"])), ref)), got)


def _worst(ref: dict, got: dict) -> float:
    """Largest difference over every output: probabilities absolute, heatmap logits and embeddings relative to
    their own scale (a heatmap of logits in the tens differs by more than 1e-4 in float32 while drawing the same)."""
    if set(ref) != set(got):
        raise ExportError(f"the ONNX graph's outputs {sorted(got)} are not the model's {sorted(ref)}")
    worst = 0.0
    for name, r in ref.items():
        r = r.numpy()
        scale = 1.0 if name in ("p_counterfeit", "product_prob") else max(1.0, float(np.abs(r).max()))
        worst = max(worst, float(np.abs(r - got[name]).max()) / scale)
    return worst


def write(out: Path, model_bytes: bytes, meta: dict, why_fp32: str | None) -> str:
    write_bytes(out, model_bytes)   # a scan reading the old model never sees half of the new one
    sha = hashlib.sha256(model_bytes).hexdigest()
    from genuine.train.modelcard import model_card

    write_text(out.with_suffix(".md"), model_card(out, meta, sha, len(model_bytes), why_fp32))
    return sha


def main(args) -> int:
    ckpt = checkpoint.load(args.checkpoint)
    meta = ckpt["meta"]
    if "thresholds" not in meta:
        raise ExportError(f"{args.checkpoint}: not calibrated (training did not finish); run genuine train --resume")
    net = checkpoint.build_from(ckpt)
    out = Path(args.out)
    if is_comparator(meta):
        images = comparator_pairs(meta, args.calib)
        n = len(images[0])
    else:
        images = parity_photos(meta, args.calib).images
        n = len(images)
    fp32 = to_onnx(net, meta)
    diff = check_parity(net, meta, with_metadata(fp32, metadata(meta, False, None)), images)
    print(f"parity onnxruntime vs torch on {n} real photos, every output: max |diff| = {diff:.2e} "
          f"(limit {PARITY_TOL:.0e})")
    if not diff <= PARITY_TOL:
        raise ExportError(f"ONNX output differs from torch by {diff:.2e} > {PARITY_TOL:.0e}; nothing written")
    info = metadata(meta, False, diff)
    final, int8, why = with_metadata(fp32, info), False, None
    if args.int8:
        from genuine.train.quantize import calibration_inputs, quantize_gated

        q, why, gate = quantize_gated(final, meta, *calibration_inputs(meta, args.calib or meta["data"]["root"]))
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
    if is_comparator(meta) and (meta.get("fusion") or {}).get("used"):   # templates and genuine photos: a store
        print(f"Next: genuine data references {meta['data']['root']} --db refs.db && "
              f"genuine inspect {out} PHOTO.jpg --templates refs.db --heatmap heatmap.png")
    elif is_comparator(meta):
        print(f"Next: genuine inspect {out} PHOTO.jpg --templates {meta['data']['root']} --heatmap heatmap.png")
    else:
        print(f"Next: genuine inspect {out} PHOTO.jpg --heatmap heatmap.png")
    return 0

