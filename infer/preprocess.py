"""Photo -> model input: the one preprocessing definition (training, evaluation, export parity, inspector).

The model itself takes uint8 RGB (N, H, W, 3) and normalises inside its graph, so
everything outside the graph is this file: decode (infer.photo) and letterbox.

    x = prepare(load_photo(path, min_side=decode_side(384)), 384)   # (384, 384, 3) uint8
"""
from __future__ import annotations

import numpy as np
from PIL import Image

# Recorded in every checkpoint and ONNX file; the runtime refuses a model that asks for another method.
RESIZE = "letterbox"
PAD_VALUE = 114           # mid grey: neither paper white nor ink black
MEAN = (0.485, 0.456, 0.406)
STD = (0.229, 0.224, 0.225)


def decode_side(size: int) -> int:
    """Decode JPEGs to at least twice the model size: DCT scaling is fast, and the final
    antialiased resize from 2x keeps fine print that a 1x decode would alias."""
    return 2 * int(size)


def letterbox_geometry(width: int, height: int, size: int) -> tuple[float, int, int, int, int]:
    """(scale, new_w, new_h, pad_left, pad_top) placing a width x height photo in a size x size square."""
    scale = size / max(width, height)
    nw, nh = max(1, round(width * scale)), max(1, round(height * scale))
    return scale, nw, nh, (size - nw) // 2, (size - nh) // 2


def prepare(img: Image.Image, size: int) -> np.ndarray:
    """Resize the whole photo (aspect kept, no crop: the defect may be at the edge) onto a grey square."""
    if img.mode != "RGB":
        raise ValueError(f"prepare expects an RGB image from infer.photo.load_photo, got mode {img.mode}")
    _, nw, nh, left, top = letterbox_geometry(img.width, img.height, size)
    resized = img.resize((nw, nh), Image.BILINEAR)  # antialiased: PIL widens the filter when shrinking
    out = np.full((size, size, 3), PAD_VALUE, np.uint8)
    out[top:top + nh, left:left + nw] = np.asarray(resized)
    return out




def face_input(face: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """A rectified face or a template (h, w, 3) uint8, in the package's frame -> the comparator's (H, W, 3)
    input. Face and template go through this same resize, so they stay aligned whatever the aspect."""
    import cv2

    w, h = int(size[0]), int(size[1])
    if face.shape[:2] == (h, w):
        return np.ascontiguousarray(face)
    shrink = face.shape[1] > w and face.shape[0] > h
    return cv2.resize(face, (w, h), interpolation=cv2.INTER_AREA if shrink else cv2.INTER_LINEAR)



def spec(size: int) -> dict:
    """What a consumer needs to reproduce preprocessing (stored in checkpoints and ONNX metadata)."""
    return {"size": int(size), "resize": RESIZE, "pad_value": PAD_VALUE, "mean": list(MEAN), "std": list(STD),
            "input": "uint8 RGB NHWC", "decode_min_side": decode_side(size)}
