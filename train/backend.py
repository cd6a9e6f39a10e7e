"""A torch checkpoint behind the comparator's runtime contract, so `genuine evaluate` scores a best.pt through the
same face -> verdict step (genuine.infer.judge.FaceJudge) as an exported ONNX file (infer.runtime.OnnxModel).

    backend = TorchComparator(checkpoint.load("runs/x/best.pt"))
    backend.compare(faces, templates)   # {"p_counterfeit": (N,), "heatmap": (N, h, w)}, uint8 NHWC inputs
"""
from __future__ import annotations

import numpy as np
import torch

from genuine.train import checkpoint


class TorchComparator:
    """compare(), meta, face_size and sha256 of a comparator checkpoint, calibrated like the exported graph."""

    def __init__(self, ckpt: dict, name: str | None = None):
        self.meta = ckpt["meta"]
        self.face_size = tuple(self.meta["face_size"])
        self.net = checkpoint.build_from(ckpt).eval()
        self.temperature = float(self.meta["calibration"]["temperature"])
        self.name, self.sha256 = name or self.meta.get("path", ""), None   # no exported file: no file hash

    def compare(self, faces: np.ndarray, templates: np.ndarray) -> dict:
        with torch.no_grad():
            out = self.net(torch.from_numpy(np.ascontiguousarray(faces)), torch.from_numpy(np.ascontiguousarray(templates)))
        return {"p_counterfeit": torch.sigmoid(out["logit"] / self.temperature).numpy(),
                "heatmap": out["heatmap"].numpy()}
