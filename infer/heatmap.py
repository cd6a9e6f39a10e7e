"""Where the model looked: the score map drawn over the photo (numpy + Pillow, no matplotlib).

    overlay(photo, heat, model_size).save("heatmap.png")
    where(heat)   # "upper left"
"""
from __future__ import annotations

import numpy as np
from PIL import Image

from infer.preprocess import letterbox_geometry

# A compact perceptual ramp (dark blue -> cyan -> yellow -> red), 256 entries.
_STOPS = np.array([[0, 0, 80], [0, 90, 200], [0, 200, 200], [250, 230, 0], [230, 20, 20]], np.float32)
LUT = np.stack([np.interp(np.linspace(0, 4, 256), np.arange(5), _STOPS[:, c]) for c in range(3)], 1).astype(np.uint8)


def _photo_map(photo: Image.Image, heat: np.ndarray, model_size: int) -> np.ndarray:
    """Score map (logits on the letterboxed input) -> 0..1 over the photo's own pixels, relative to its own
    range: the picture answers "where did it look", the score itself is reported beside it."""
    h = heat.astype(np.float32)
    rel = (h - h.min()) / max(float(h.max() - h.min()), 1e-6)
    square = np.asarray(Image.fromarray(rel, "F").resize((model_size, model_size), Image.BILINEAR))
    _, nw, nh, left, top = letterbox_geometry(photo.width, photo.height, model_size)
    return square[top:top + nh, left:left + nw]


def overlay(photo: Image.Image, heat: np.ndarray, model_size: int, max_side: int = 1024, alpha: float = 0.45) -> Image.Image:
    k = min(1.0, max_side / max(photo.size))
    base = photo.resize((max(1, round(photo.width * k)), max(1, round(photo.height * k))), Image.BILINEAR) if k < 1 else photo
    m = _photo_map(photo, heat, model_size)
    m = np.asarray(Image.fromarray(m, "F").resize(base.size, Image.BILINEAR))
    colour = LUT[np.clip(m * 255, 0, 255).astype(np.uint8)]
    a = (alpha * (0.25 + 0.75 * m))[..., None]  # hot areas stand out, cold ones barely tint
    out = np.asarray(base, np.float32) * (1 - a) + colour.astype(np.float32) * a
    return Image.fromarray(np.clip(out, 0, 255).astype(np.uint8))


def where(heat: np.ndarray) -> str:
    """The hottest region of the map in words an officer can use."""
    y, x = np.unravel_index(int(np.argmax(heat)), heat.shape)
    h, w = heat.shape
    row = ("upper", "middle", "lower")[min(2, int(3 * (y + 0.5) / h))]   # by cell centre, not corner
    col = ("left", "centre", "right")[min(2, int(3 * (x + 0.5) / w))]
    return "centre" if (row, col) == ("middle", "centre") else f"{row} {col}".replace("middle ", "")
