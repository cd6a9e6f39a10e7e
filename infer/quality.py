"""Photo quality gate: a photo too blurred, dark, bright or small is not judged; the officer is told what to do.

Measured on what the model sees (the letterboxed input), so "sharp enough" means sharp enough for the
model, whatever the camera, and costs well under a millisecond.

    q = assess(x, photo.size, model_size=320)
    q.issues   # [("blur", "hold steady and retake: the photo is blurred")]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from genuine.infer.preprocess import letterbox_geometry

DEFAULTS = {
    # Variance of the Laplacian of the grey model input. SynthPack photos (defocus and motion blur included)
    # are >= 25 in 99.5% of cases; a Gaussian blur of radius 2 on them gives <= 8.
    "min_sharpness": 12.0,
    "min_brightness": 45.0,    # mean grey level
    "max_brightness": 230.0,
    "max_clipped": 0.25,       # share of pixels at >= 250 (blown out, glare)
    "min_side_ratio": 0.75,    # photo's shorter side / model input size
    # Photo pixels per template pixel on a rectified face (infer.rectify). SynthPack's medium capture puts
    # 0.5-0.95 on its template (bench/rectify.py); a face from fewer is blown up from too few pixels.
    "min_face_density": 0.45,   # photo pixels per model input pixel (rectify_photo): 0.4 of a 365 px SynthPack template
}
ADVICE = {
    "blur": "hold steady and retake: the photo is blurred",
    "dark": "more light: the photo is too dark",
    "bright": "less light or avoid glare: the photo is overexposed",
    "small": "move closer or use the full camera resolution: the photo is too small",
}


@dataclass
class Quality:
    sharpness: float
    brightness: float
    clipped: float
    width: int
    height: int
    issues: list = field(default_factory=list)   # (code, advice)

    def to_dict(self) -> dict:
        return {"sharpness": round(self.sharpness, 2), "brightness": round(self.brightness, 2),
                "clipped": round(self.clipped, 4), "width": self.width, "height": self.height,
                "issues": [code for code, _ in self.issues]}


def _measure(rgb: np.ndarray, w: int, h: int) -> Quality:
    g = rgb.astype(np.float32).mean(axis=2)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    return Quality(sharpness=float(lap.var()) if lap.size else 0.0, brightness=float(g.mean()),
                   clipped=float((g >= 250).mean()), width=w, height=h)


def assess(x: np.ndarray, photo_size: tuple[int, int], model_size: int, limits: dict | None = None) -> Quality:
    """Judge what the model will see: the letterboxed input x (pad excluded), plus the photo's own size."""
    lim = {**DEFAULTS, **(limits or {})}
    w, h = photo_size
    _, nw, nh, left, top = letterbox_geometry(w, h, model_size)
    q = _measure(x[top:top + nh, left:left + nw], w, h)
    if min(w, h) < lim["min_side_ratio"] * model_size:
        q.issues.append(("small", ADVICE["small"]))
    return _light_and_focus(q, lim)


def assess_face(x: np.ndarray, density: float, limits: dict | None = None) -> Quality:
    """Judge the comparator's input `x` (a rectified face at the model's input size, preprocess.face_input) the
    same way; `density` is the photo's pixels per input pixel (Rectified.density): below min_face_density the
    face is blown up from too few pixels to show fine print. Measured on the model's input, whatever the
    template's own resolution, so an 8000 px artwork does not make every photo "too small"."""
    lim = {**DEFAULTS, **(limits or {})}
    q = _measure(x, x.shape[1], x.shape[0])
    if density < lim["min_face_density"]:
        q.issues.append(("small", ADVICE["small"]))
    return _light_and_focus(q, lim)


def _light_and_focus(q: Quality, lim: dict) -> Quality:
    if q.brightness < lim["min_brightness"]:
        q.issues.append(("dark", ADVICE["dark"]))
    elif q.brightness > lim["max_brightness"] or q.clipped > lim["max_clipped"]:
        q.issues.append(("bright", ADVICE["bright"]))
    if q.sharpness < lim["min_sharpness"] and q.brightness >= lim["min_brightness"]:
        q.issues.append(("blur", ADVICE["blur"]))   # a dark photo has no edges either; say "light" first
    return q
