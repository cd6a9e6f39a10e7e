"""Photo quality gate: a photo too blurred, dark, bright or small is not judged; the officer is told what to do.

    q = assess(img, model_size=320)
    q.issues   # [("blur", "hold steady and retake: the photo is blurred")]
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np
from PIL import Image

ANALYSIS_SIDE = 512  # measured at a fixed size, so the numbers mean the same for any camera
DEFAULTS = {
    "min_sharpness": 25.0,     # variance of the Laplacian of the grey photo at 512 px
    "min_brightness": 45.0,    # mean grey level
    "max_brightness": 230.0,
    "max_clipped": 0.25,       # share of pixels at >= 250 (blown out, glare)
    "min_side_ratio": 0.75,    # photo's shorter side / model input size
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


def assess(img: Image.Image, model_size: int, limits: dict | None = None) -> Quality:
    lim = {**DEFAULTS, **(limits or {})}
    w, h = img.size
    k = ANALYSIS_SIDE / max(w, h)
    grey = img.convert("L")
    if k < 1:
        grey = grey.resize((max(1, round(w * k)), max(1, round(h * k))), Image.BILINEAR)
    g = np.asarray(grey, dtype=np.float32)
    lap = 4 * g[1:-1, 1:-1] - g[:-2, 1:-1] - g[2:, 1:-1] - g[1:-1, :-2] - g[1:-1, 2:]
    q = Quality(sharpness=float(lap.var()) if lap.size else 0.0, brightness=float(g.mean()),
                clipped=float((g >= 250).mean()), width=w, height=h)
    if min(w, h) < lim["min_side_ratio"] * model_size:
        q.issues.append(("small", ADVICE["small"]))
    if q.brightness < lim["min_brightness"]:
        q.issues.append(("dark", ADVICE["dark"]))
    elif q.brightness > lim["max_brightness"] or q.clipped > lim["max_clipped"]:
        q.issues.append(("bright", ADVICE["bright"]))
    if q.sharpness < lim["min_sharpness"] and q.brightness >= lim["min_brightness"]:
        q.issues.append(("blur", ADVICE["blur"]))   # a dark photo has no edges either; say "light" first
    return q
