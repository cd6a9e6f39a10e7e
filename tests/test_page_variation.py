"""The page's genuine variation (web/site/variation.js, in node) against the Python inspector's
(infer/variation.evidence): a real model fitted on small synthetic aligned faces, written as the site writes it
(infer/page_variation.write_variation), and query faces scored both ways: the same standardised score and cells.

    python -m pytest -q tests/test_page_variation.py     # needs node and `npm ci` in web/ (skipped without them)
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest

from genuine.infer import variation as V
from genuine.infer.page_variation import write_variation

WEB = Path(__file__).resolve().parents[1] / "web"
SCRIPT = WEB / "tests" / "variation_parity.mjs"
H, W = 64, 96
SCORE_TOL = 1e-3   # standardised score (the score is divided by the model's scale)
CELL_TOL = 1e-2    # per-cell strength (|z|)

missing = not (WEB / "node_modules" / "@techstark" / "opencv-js" / "package.json").exists()
pytestmark = pytest.mark.skipif(shutil.which("node") is None or missing,
                                reason="no node on PATH" if shutil.which("node") is None else
                                "web/node_modules lacks @techstark/opencv-js (npm ci in web/)")


def design(rng) -> np.ndarray:
    """A printed face: smooth colour fields, hard-edged blocks and thin 'text' strokes, (H, W, 3) float32."""
    img = cv2.resize(rng.uniform(40, 220, (6, 8, 3)).astype(np.float32), (W, H), interpolation=cv2.INTER_CUBIC)
    for _ in range(6):
        x, y = rng.integers(0, W - 20), rng.integers(0, H - 12)
        img[y:y + rng.integers(4, 12), x:x + rng.integers(6, 20)] = rng.uniform(0, 255, 3)
    for _ in range(10):
        x, y = rng.integers(2, W - 30), rng.integers(2, H - 4)
        img[y:y + 1, x:x + rng.integers(8, 28)] = rng.uniform(0, 60, 3)
    return cv2.GaussianBlur(img, (0, 0), 0.7)


def photo(base, rng, defect=False) -> np.ndarray:
    """base as a camera sees it after alignment: a sub-pixel shift, a small rotation, gain, offset and noise."""
    m = cv2.getRotationMatrix2D((W / 2, H / 2), rng.uniform(-0.4, 0.4), 1 + rng.uniform(-0.005, 0.005))
    m[:, 2] += rng.uniform(-0.6, 0.6, 2)
    img = cv2.warpAffine(base, m, (W, H), flags=cv2.INTER_LINEAR, borderMode=cv2.BORDER_REFLECT)
    img = img * rng.uniform(0.9, 1.1, 3).astype(np.float32) + rng.uniform(-8, 8, 3).astype(np.float32)
    if defect:  # a painted mark and a shifted colour stroke: what the variation is for
        cv2.circle(img, (60, 30), 4, (250, 30, 30), -1)
        img[45:47, 20:50] += np.float32([0, 60, -40])
    return np.clip(img + rng.normal(0, 2.0, img.shape), 0, 255).astype(np.uint8)


def test_page_variation_matches_python(tmp_path):
    rng = np.random.default_rng(0)
    base = design(rng)
    model = V.fit(np.stack([photo(base, rng) for _ in range(8)]))
    queries = {"genuine": photo(base, rng), "defect": photo(base, rng, defect=True),
               "median": np.clip(model.median, 0, 255).astype(np.uint8),   # nothing to refine
               "flat": np.full((H, W, 3), 128, np.uint8),                  # ECC raises: kept as it is
               "noise": rng.integers(0, 256, (H, W, 3), dtype=np.uint8)}   # nothing like the product

    entry = write_variation(model, tmp_path / "variation.bin")
    assert entry["shape"] == [H, W] and (tmp_path / "variation.bin").stat().st_size == H * W * 7 * 2   # float16
    constants = {"high_pass": V.HIGH_PASS, "floor": V.FLOOR, "top": V.TOP, "chroma_weight": V.CHROMA_WEIGHT,
                 "blurs": list(V.BLURS), "score_clip": V.SCORE_CLIP}
    cases = []
    for name, face in queries.items():
        (tmp_path / f"{name}.rgb").write_bytes(face.tobytes())
        cases.append({"name": name, "file": f"{name}.rgb"})
    (tmp_path / "cases.json").write_text(json.dumps({"h": H, "w": W, "stride": 4, "variation": entry,
                                                     "constants": constants, "cases": cases}))
    run = subprocess.run(["node", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr
    js = json.loads(run.stdout)

    report = {}
    for name, face in queries.items():
        s, cells = V.evidence(model, face)
        got = js[name]
        c = np.asarray(got["cells"], np.float32).reshape(got["cellsH"], got["cellsW"])
        assert c.shape == cells.shape
        report[name] = (s, got["score"], abs(got["score"] - s), float(np.abs(c - cells).max()), got["ms"])
    print("\nface: python score, page score, |score diff|, max |cell diff|, page ms")
    for name, r in report.items():
        print(f"{name:8s} {r[0]:10.5f} {r[1]:10.5f} {r[2]:.2e} {r[3]:.2e} {r[4]:.0f}")
    for name, (s, js_s, ds, dc, _) in report.items():
        assert ds < SCORE_TOL, (name, s, js_s)
        assert dc < CELL_TOL, (name, dc)
    assert report["defect"][0] > report["genuine"][0] + 3 and report["defect"][1] > report["genuine"][1] + 3
