"""What a zone check says, and the small geometry all zones share (boxes in 0..1 of the template's face)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, field

import numpy as np


@dataclass
class Finding:
    zone: str                  # "barcode", "text", "colour"
    state: str                 # "pass", "fail" or "unread" (no evidence: the photo does not show it well enough)
    score: float               # evidence for counterfeit: 0 = as genuine units, >= 1 = outside every genuine one
    message: str               # what an officer reads: the zone, what it shows, what the artwork says
    box: list                  # where, as (x0, y0, x1, y1) in 0..1 of the face
    detail: dict = field(default_factory=dict)

    @classmethod
    def from_dict(cls, d: dict) -> "Finding":
        return cls(d["zone"], d["state"], float(d["score"]), d["message"], list(d["box"]), dict(d.get("detail") or {}))

    def to_dict(self) -> dict:
        d = asdict(self)
        d["score"] = round(float(self.score), 4)
        d["box"] = [round(float(v), 4) for v in self.box]
        return d


def norm_box(box, w: int, h: int) -> list[float]:
    x0, y0, x1, y1 = box
    return [max(0.0, float(x0) / w), max(0.0, float(y0) / h), min(1.0, float(x1) / w), min(1.0, float(y1) / h)]


def pixel_box(box, w: int, h: int, margin: float = 0.0) -> tuple[int, int, int, int]:
    """A 0..1 box in pixels of a (w, h) face, grown by `margin` of its size on every side and kept inside."""
    x0, y0, x1, y1 = box
    mx, my = margin * (x1 - x0), margin * (y1 - y0)
    return (max(0, int((x0 - mx) * w)), max(0, int((y0 - my) * h)),
            min(w, int(np.ceil((x1 + mx) * w))), min(h, int(np.ceil((y1 + my) * h))))


def crop(face: np.ndarray, box, margin: float = 0.0) -> np.ndarray:
    h, w = face.shape[:2]
    x0, y0, x1, y1 = pixel_box(box, w, h, margin)
    return np.ascontiguousarray(face[y0:y1, x0:x1])
