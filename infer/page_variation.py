"""A product's genuine variation as the officer's page reads it (docs/page.md, web/site/variation.js).

    from genuine.infer.page_variation import write_variation
    entry = write_variation(model, folder / "variation.bin")   # site.json's templates[].variation

variation.bin: float16 median (h, w, 3), then float16 spread (h, w, 4), little-endian, HWC (the model holds them at
float16 precision: infer.variation.half, so nothing is lost); the rest (centre, scale, n, shape) goes into site.json.
"""
from __future__ import annotations

from pathlib import Path

import numpy as np

from genuine.infer.variation import ProductModel


def write_variation(model: ProductModel, path) -> dict:
    """Write model's median and spread to path; return the JSON entry {"centre", "scale", "n", "shape": [h, w]}."""
    h, w = model.median.shape[:2]
    assert model.median.shape == (h, w, 3) and model.spread.shape == (h, w, 4), "median (h, w, 3), spread (h, w, 4)"
    with open(Path(path), "wb") as f:
        for a in (model.median, model.spread):
            h16 = np.ascontiguousarray(a, dtype="<f2")
            assert np.array_equal(h16.astype(np.float32), a), "the model must hold float16 values (variation.half)"
            f.write(h16.tobytes())
    return {"centre": float(model.centre), "scale": float(model.scale), "n": int(model.n), "shape": [int(h), int(w)]}
