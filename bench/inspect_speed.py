"""Benchmark: a 12 MP phone JPEG to a verdict, on 1 thread, against the naive path, in the same run.

    python bench/inspect_speed.py [--backbone mobilenet_v3_large] [--size 320] [--photos 3] [--repeat 5]

ours:  infer.Inspector (DCT-scaled decode via Image.draft, letterbox, onnxruntime FP32 / INT8)
naive: PIL full decode + EXIF transpose + torchvision Resize/Pad/ToTensor/Normalize + torch eager
Also: cold start (a fresh process, import to first verdict) and model sizes. Weights are random:
speed does not depend on them, and nothing is downloaded.
"""
from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps

from genuine.infer.inspector import Inspector
from genuine.infer.model_input import photo_input
from genuine.infer.preprocess import PAD_VALUE, letterbox_geometry, spec
from genuine.train.export import metadata, to_onnx, with_metadata
from genuine.train.model import GenuineNet
from genuine.train.quantize import _Reader
from genuine.train.synthpack.capture import photograph
from genuine.train.synthpack.design import make_design
from genuine.train.synthpack.render import Item, render


def phone_photos(folder: Path, n: int) -> list[Path]:
    d = make_design(0, 0)
    pkg, _ = render(d, Item("00000001", "AB10", (0.0, 0.0), 1.0, 0.1, 1), 3800)
    paths = []
    for k in range(n):
        data, _ = photograph(pkg, np.random.default_rng(k), 4032)
        p = folder / f"phone{k}.jpg"
        p.write_bytes(data)
        paths.append(p)
    return paths


def fake_meta(backbone: str, size: int, flag_all: bool = True) -> dict:
    """Random weights give p ~ 0.5: thresholds 0.2/0.8 flag every photo (worst case), 1.01 flags none."""
    t = (0.2, 0.8) if flag_all else (1.01, 1.01)
    return {"preprocess": spec(size), "labels": ["genuine", "counterfeit"], "products": [f"p{i}" for i in range(8)],
            "thresholds": {"threshold_genuine": t[0], "threshold_suspect": t[1], "target_fpr": 0.01, "target_miss": 0.05},
            "calibration": {"temperature": 1.0}, "backbone": backbone, "data": {"fingerprint": "bench"},
            "metrics": {}, "weights": {"source": "none"}, "versions": {}}


def build_models(folder: Path, backbone: str, size: int, calib: list[np.ndarray], flag_all: bool = True) -> dict:
    from onnxruntime.quantization import QuantFormat, QuantType, quantize_static
    from onnxruntime.quantization.shape_inference import quant_pre_process

    net = GenuineNet(backbone, n_products=8).eval()
    meta = fake_meta(backbone, size, flag_all)
    info = metadata(meta, False, 0.0)
    if not flag_all:
        info["product_min_confidence"] = 0.0  # random product probabilities would read as "not covered"
    fp32 = with_metadata(to_onnx(net, meta), info)
    (folder / "fp32.onnx").write_bytes(fp32)
    quant_pre_process(str(folder / "fp32.onnx"), str(folder / "pre.onnx"), skip_symbolic_shape=True)
    quantize_static(str(folder / "pre.onnx"), str(folder / "int8.onnx"), _Reader(np.stack(calib), "image"),
                    quant_format=QuantFormat.QDQ, per_channel=True, activation_type=QuantType.QUInt8,
                    weight_type=QuantType.QInt8)
    return {"net": net, "fp32": folder / "fp32.onnx", "int8": folder / "int8.onnx"}


def naive(net, path: Path, size: int):
    """What a typical project does: decode everything, transform with torchvision, run torch eager."""
    import torchvision.transforms.v2 as T

    img = ImageOps.exif_transpose(Image.open(path)).convert("RGB")
    _, nw, nh, left, top = letterbox_geometry(img.width, img.height, size)
    tf = T.Compose([T.Resize((nh, nw), antialias=True), T.Pad((left, top, size - nw - left, size - nh - top), fill=PAD_VALUE),
                    T.PILToTensor()])
    x = tf(img).permute(1, 2, 0)[None].contiguous()
    with torch.no_grad():
        return net(x)


def timed(fn, photos, repeat) -> float:
    fn(photos[0])  # warm-up
    t = []
    for _ in range(repeat):
        for p in photos:
            t0 = time.perf_counter()
            fn(p)
            t.append(time.perf_counter() - t0)
    return 1000 * float(np.median(t))


def cold_start(model: Path, photo: Path) -> float:
    code = f"from infer.inspector import Inspector; Inspector({str(model)!r}, threads=1).inspect({str(photo)!r})"
    t = []
    for _ in range(3):
        t0 = time.perf_counter()
        subprocess.run([sys.executable, "-c", code], check=True)
        t.append(time.perf_counter() - t0)
    return 1000 * float(np.median(t))


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--backbone", default="mobilenet_v3_large")
    ap.add_argument("--size", type=int, default=320)
    ap.add_argument("--photos", type=int, default=3)
    ap.add_argument("--repeat", type=int, default=5)
    args = ap.parse_args()
    torch.set_num_threads(1)
    with tempfile.TemporaryDirectory() as tmp:
        tmp = Path(tmp)
        photos = phone_photos(tmp, args.photos)
        calib = [photo_input(p, args.size).x for p in photos]
        m = build_models(tmp, args.backbone, args.size, calib * 4)
        fp32, int8 = Inspector(m["fp32"], threads=1), Inspector(m["int8"], threads=1)
        res = {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores, python {platform.python_version()}",
            "photo": f"{Image.open(photos[0]).size[0]}x{Image.open(photos[0]).size[1]} JPEG, {photos[0].stat().st_size / 1e6:.1f} MB",
            "backbone": args.backbone, "size": args.size,
            "naive_ms": timed(lambda p: naive(m["net"], p, args.size), photos, args.repeat),
            "ours_fp32_ms": timed(fp32.inspect, photos, args.repeat),
            "ours_int8_ms": timed(int8.inspect, photos, args.repeat),
            "decode_only_ms": timed(lambda p: fp32.load(p), photos, args.repeat),
            "model_fp32_ms": timed(lambda x: fp32.model.run(x), [calib[0][None]], args.repeat * 3),
            "model_int8_ms": timed(lambda x: int8.model.run(x), [calib[0][None]], args.repeat * 3),
            "cold_start_fp32_ms": cold_start(m["fp32"], photos[0]),
            "size_fp32_mb": m["fp32"].stat().st_size / 1e6, "size_int8_mb": m["int8"].stat().st_size / 1e6,
        }
    res["speedup_fp32"] = res["naive_ms"] / res["ours_fp32_ms"]
    res["speedup_int8"] = res["naive_ms"] / res["ours_int8_ms"]
    print(json.dumps({k: (round(v, 2) if isinstance(v, float) else v) for k, v in res.items()}, indent=1))


if __name__ == "__main__":
    main()
