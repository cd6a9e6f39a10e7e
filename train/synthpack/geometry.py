"""Known geometry of SynthPack photos: where each photo put the package face, replayed without rendering.

    corners = photo_corners("datasets/synthpack", manifest_row)   # (4, 2): the ground truth for rectification

The capture's pose draws (capture.place) are seeded by item and photo number only, so replaying them gives
the exact corners; bench/rectify.py measures rectification's corner error against them.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np

from .capture import photo_size, place
from .generate import Plan, _design, _photo_rng, face_size


def shot_corners(q: Plan, k: int) -> np.ndarray:
    """Where photo k of item q puts the package face: see photo_corners() (this replays the same draws)."""
    W, H = photo_size(q.size)
    return place(_photo_rng(q, k), face_size(q.size), W, H, q.capture)[1]


def product_index(seed: int, slug: str, products: int = 1000) -> int:
    """The index of the product whose folder is `slug` (slugs start with the index: '03-name')."""
    head = slug.split("-", 1)[0]
    if head.isdigit() and int(head) < products and _design(seed, int(head)).slug == slug:
        return int(head)
    raise ValueError(f"{slug!r} is not a product of the SynthPack with seed {seed}")


def row_plan(info: dict, row: dict) -> tuple[Plan, int]:
    """The Plan (enough of it for its geometry) and photo number k of a manifest row.

    info: synthpack.json as a dict; row: a manifest.csv row (product, item_id, photo; label if present).
    Twins (item_id ending in 't') share their counterfeit's number and so its capture."""
    seed = int(info["seed"])
    p = product_index(seed, row["product"], int(info["products"]))
    number = int(row["item_id"].removesuffix("t").rsplit("-", 1)[1])
    q = Plan(seed, p, number, row.get("label") or "genuine", row.get("defect") or "",
             float(row.get("severity") or 0.0), row.get("split") or "", int(info["photos_per_item"]),
             int(info["size"]), float(info.get("capture_strength", 1.0)))
    return q, int(row["photo"])


def photo_corners(info, row: dict) -> np.ndarray:
    """The exact corners of the package face in one SynthPack photo: a (4, 2) float array (x, y).

    info: the dataset root (holding synthpack.json) or synthpack.json as a dict; row: that photo's
    manifest.csv row (product, item_id and photo are used). Nothing is rendered: the capture's seeded
    draws are replayed (capture.place).

    Order: top-left, top-right, bottom-right, bottom-left of the face, i.e. where the template's
    (0, 0), (W_t, 0), (W_t, H_t), (0, H_t) land, (W_t, H_t) = face_size(size) the template's size.
    Coordinates are continuous photo pixels with PIL's convention: (0, 0) is the outer corner of the
    top-left pixel, pixel (i, j) has its centre at (i + 0.5, j + 0.5); the template's corners are its
    outer pixel edges likewise. For OpenCV (pixel centres at integers) subtract 0.5 from both sides:
    cv2.getPerspectiveTransform(template_corners - 0.5, photo_corners - 0.5) maps template to photo.

    The corners are the die cut's (the face's edges), not the artwork's: a unit's print is offset against
    the die cut by (print_dx, print_dy) from the manifest, in 1/100 of the face width (normal, sd 0.5 per
    axis: about 1.8 template px at size 384), so after a perfect rectification to these corners the
    template's pixel (x, y) shows at (x + print_dx * W_t / 100, y + print_dy * W_t / 100) (to the
    renderer's whole-pixel rounding of some elements); misregistration counterfeits add a plate offset."""
    if not isinstance(info, dict):
        info = json.loads((Path(info) / "synthpack.json").read_text())
    q, k = row_plan(info, row)
    return shot_corners(q, k)
