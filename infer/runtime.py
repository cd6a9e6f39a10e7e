"""ONNX model loading and inference with onnxruntime: single-file models only, metadata read back.

    model = OnnxModel("model.onnx", threads=1)
    model.meta["thresholds"], model.sha256
    out = model.compare(faces, templates)  # comparator: {"p_counterfeit": (N,), "heatmap": (N, H/4, W/4)}
    out = model.run(batch_uint8_nhwc)     # whole-photo: {"p_counterfeit": (N,), "embedding": ..., "heatmap": ..., ...}
"""
from __future__ import annotations

import hashlib
import json
import os
from pathlib import Path

import numpy as np
import onnxruntime as ort

# ModelError, META_KEY and weak_model_warning are the contract's, re-exported: callers load models from here.
from genuine.infer.contract import (  # noqa: F401
    COMPARATOR_INPUTS,
    META_KEY,
    ModelError,
    check_meta,
    is_comparator,
    weak_model_warning,
)
from genuine.infer.preprocess import RESIZE


class OnnxModel:
    def __init__(self, path: str | os.PathLike, threads: int = 0):
        path = Path(path)
        try:
            data = path.read_bytes()
        except FileNotFoundError:
            raise ModelError(f"{path}: model file not found") from None
        except OSError as e:
            raise ModelError(f"{path}: cannot read model ({e.strerror or e})") from None
        self._init(data, str(path), threads)

    @classmethod
    def from_bytes(cls, data: bytes, threads: int = 0, name: str = "<bytes>") -> "OnnxModel":
        self = cls.__new__(cls)
        self._init(data, name, threads)
        return self

    def _init(self, data: bytes, name: str, threads: int) -> None:
        self.name, self.size_bytes = name, len(data)
        self.sha256 = hashlib.sha256(data).hexdigest()
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = int(threads)  # 0 = onnxruntime's default (all cores)
        opts.inter_op_num_threads = 1
        opts.log_severity_level = 3
        try:
            # From bytes, an external-data reference has no folder to resolve against and fails:
            # exactly the single-file rule (no side files, no paths escaping the model folder).
            self.session = ort.InferenceSession(data, opts, providers=["CPUExecutionProvider"])
        except Exception as e:
            msg = str(e).splitlines()[0][:300]
            hint = " (external data is not accepted: export a single-file model)" if "external" in msg.lower() else ""
            raise ModelError(f"{name}: not a loadable ONNX model{hint} ({msg})") from None
        raw = self.session.get_modelmeta().custom_metadata_map.get(META_KEY)
        if raw is None:
            raise ModelError(f"{name}: ONNX model without genuine metadata; export it with genuine export")
        try:
            self.meta = json.loads(raw)
        except json.JSONDecodeError as e:
            raise ModelError(f"{name}: corrupt genuine metadata ({e})") from None
        check_meta(self.meta, name)
        self.outputs = [o.name for o in self.session.get_outputs()]
        self.is_comparator = is_comparator(self.meta)
        if self.is_comparator:
            self.size = None
            self.face_size = tuple(int(v) for v in self.meta["input"]["face_size"])
            w, h = self.face_size
            ins = {i.name: i for i in self.session.get_inputs()}
            for key in COMPARATOR_INPUTS:
                i = ins.get(key)
                if i is None or i.type != "tensor(uint8)" or list(i.shape[1:]) != [h, w, 3]:
                    raise ModelError(f"{name}: comparator input {key!r} does not match its metadata "
                                     f"(uint8, N x {h} x {w} x 3)")
            return
        if self.meta["input"]["resize"] != RESIZE:
            raise ModelError(f"{name}: model expects {self.meta['input']['resize']!r} preprocessing, "
                             f"this runtime does {RESIZE!r}")
        self.size = int(self.meta["input"]["size"])
        inp = self.session.get_inputs()[0]
        self.input_name = inp.name
        if inp.type != "tensor(uint8)" or list(inp.shape[1:]) != [self.size, self.size, 3]:
            raise ModelError(f"{name}: input {inp.type} {inp.shape} does not match its metadata "
                             f"(uint8, N x {self.size} x {self.size} x 3)")

    @property
    def products(self) -> list[str]:
        return self.meta.get("products", [])

    def compare(self, faces: np.ndarray, templates: np.ndarray) -> dict:
        """Comparator: rectified faces against their templates, both uint8 (N, H, W, 3) at face_size."""
        if not self.is_comparator:
            raise ValueError(f"{self.name} is a whole-photo model: use run()")
        w, h = self.face_size
        for a in (faces, templates):
            if a.dtype != np.uint8 or a.ndim != 4 or a.shape[1:] != (h, w, 3):
                raise ValueError(f"expected uint8 (N, {h}, {w}, 3), got {a.dtype} {a.shape}")
        res = self.session.run(None, dict(zip(COMPARATOR_INPUTS, (faces, templates))))
        return dict(zip(self.outputs, res))

    def run(self, images: np.ndarray) -> dict:
        if self.is_comparator:
            raise ValueError(f"{self.name} is a comparator: use compare(faces, templates)")
        if images.dtype != np.uint8 or images.ndim != 4 or images.shape[1:] != (self.size, self.size, 3):
            raise ValueError(f"expected uint8 (N, {self.size}, {self.size}, 3), got {images.dtype} {images.shape}")
        res = self.session.run(None, {self.input_name: images})
        return dict(zip(self.outputs, res))
