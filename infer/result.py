"""What an inspection returns: one Result per photo, for the CLI, scans, reports and the page. No torch."""
from __future__ import annotations

import os
from dataclasses import asdict, dataclass, field

import numpy as np

from genuine.infer.photo import printable


@dataclass
class Result:
    source: str
    verdict: str                   # GENUINE | SUSPECT | INCONCLUSIVE
    reason: str                    # what the officer can act on
    authenticity: float            # calibrated probability of genuine (1 - p_counterfeit)
    p_counterfeit: float
    product: str | None
    product_confidence: float | None
    quality: dict
    timing_ms: dict
    model_sha256: str
    reference: dict | None = None  # closest references and similarities, when inspecting with --references
    rectification: dict | None = None  # comparator models: how the photo was aligned (infer.rectify.to_dict)
    evidence: dict | None = None   # comparator models: its p, the genuine-variation score and what was fused
    heatmap: np.ndarray | None = field(default=None, repr=False)   # score map on the model input grid
    embedding: np.ndarray | None = field(default=None, repr=False)
    face: np.ndarray | None = field(default=None, repr=False)      # comparator: the rectified face (heatmap's frame)
    H: np.ndarray | None = field(default=None, repr=False)         # comparator: face pixels -> photo pixels

    def to_dict(self) -> dict:
        d = asdict(self)
        for k in ("heatmap", "embedding", "face", "H"):
            d.pop(k)
        return d


def source_name(photo) -> str:
    """How a result names its photo: the path (printable), or the kind of object it was given."""
    return printable(str(photo)) if isinstance(photo, (str, os.PathLike)) else f"<{type(photo).__name__}>"
