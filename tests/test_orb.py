"""The face's keypoint start that Python and the officer's page share (infer/orb.py): the same ORB keypoints, the same
LSH matches and the same polished homography in Python as on the page (web/site/rectify.js and match.js, in node),
and the polish that keeps a homography where it was when a match or two change.

    python -m pytest -q tests/test_orb.py     # the page half needs node and `npm ci` in web/ (skipped without them)
"""
from __future__ import annotations

import json
import shutil
import subprocess
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from genuine.infer import orb, rectify
from genuine.infer.keypoints import KP_SIDE, Template
from genuine.infer.page_build import orb_bytes

WEB = Path(__file__).resolve().parents[1] / "web"
SCRIPT = WEB / "tests" / "orb_parity.mjs"
NO_NODE = shutil.which("node") is None or not (WEB / "node_modules" / "@techstark" / "opencv-js" / "package.json").exists()


@pytest.fixture(scope="module")
def synth(tmp_path_factory):
    """One SynthPack product at 640 px: its template and 8 photos (2 genuine and 2 counterfeit items, 2 photos each)."""
    from genuine.train.synthpack.generate import generate

    out = tmp_path_factory.mktemp("orb") / "data"
    generate(out, products=1, items_per_class=2, photos_per_item=2, size=640, difficulty="medium", seed=0, workers=1,
             progress=False)
    (product,) = [p for p in out.iterdir() if p.is_dir()]
    t = Template.from_image(product.name, Image.open(product / "template.png"), str(product / "template.png"))
    photos = [np.asarray(Image.open(p).convert("RGB")) for p in sorted(product.glob("*/*.jpg"))]
    assert len(photos) == 8
    return t, photos


def _corners(H, t) -> np.ndarray:
    w, h = t.size
    return cv2.perspectiveTransform(np.array([[[0, 0], [w, 0], [w, h], [0, h]]], np.float64), H)[0]


@pytest.mark.skipif(NO_NODE, reason="needs node and `npm ci` in web/")
def test_python_fits_the_face_as_the_page_does(synth, tmp_path):
    t, photos = synth
    pts, desc = orb.orb_keypoints(t.image, 2 * orb.ORB["nfeatures"], KP_SIDE)
    (tmp_path / "t.orb").write_bytes(orb_bytes(pts, desc))
    (tmp_path / "t.rgb").write_bytes(t.image.tobytes())
    cases = []
    for i, rgb in enumerate(photos):
        (tmp_path / f"{i}.rgb").write_bytes(rgb.tobytes())
        cases.append({"name": str(i), "file": f"{i}.rgb", "h": rgb.shape[0], "w": rgb.shape[1]})
    E = {"side": rectify.ECC_SIDE, "iterations": rectify.ECC_CRITERIA[1], "eps": rectify.ECC_CRITERIA[2],
         "blur": rectify.ECC_BLUR, "max_move": rectify.ECC_MAX_MOVE}
    constants = {"orb": orb.ORB, "ratio": orb.RATIO, "magsac_px": orb.MAGSAC_PX, "polish": orb.POLISH,
                 "match_side": rectify.MATCH_SIDE, "ecc": E}
    template = {"file": "t.rgb", "h": t.size[1], "w": t.size[0], "orb": "t.orb"}
    (tmp_path / "cases.json").write_text(json.dumps({"constants": constants, "template": template, "cases": cases}))
    run = subprocess.run(["node", str(SCRIPT), str(tmp_path)], capture_output=True, text=True, timeout=120)
    assert run.returncode == 0, run.stderr[-2000:]
    page = json.loads(run.stdout)
    assert page["lsh"] == {"tables": orb.TABLES, "bits": orb.BITS, "seed": orb.SEED}   # match.js hashes as orb.py
    train, ts = orb.of_template(t), rectify.TemplateSet([t])
    for i, rgb in enumerate(photos):
        js = page[str(i)]
        mine = orb.describe_photo(rgb)
        # the same keypoints to the last bit (their order differs: std::nth_element in libc++ and libstdc++), their
        # descriptors equal but for a bit or two in a few (OpenCV's builds differ)
        jp, jd = np.float32(js["pts"]).reshape(-1, 2), np.uint8(js["desc"]).reshape(-1, 32)
        mo, jo = np.lexsort(mine.pts.T[::-1]), np.lexsort(jp.T[::-1])
        assert np.array_equal(mine.pts[mo], jp[jo])
        assert (mine.desc[mo] == jd[jo]).all(axis=1).mean() >= 0.95
        # match.js's nearest, second-nearest and ties, from the page's own keypoints
        theirs = orb.Described.of(jp, jd, mine.scale)
        b0, d0, d1 = orb.knn2(theirs, train)
        assert (b0.tolist(), d0.tolist(), d1.tolist()) == (js["b0"], js["d0"], js["d1"])
        q, k = orb.ratio_matches(theirs, train)
        assert (q.tolist(), k.tolist()) == (js["q"], js["k"])
        same = orb.homography(theirs, train, q, k)
        assert np.abs(_corners(same.H, t) - _corners(np.reshape(js["fit"], (3, 3)), t)).max() < 1e-4   # LM rounding
        assert (same.inliers, same.matches) == (js["inliers"], js["matches"])
        # and Python's own rectification (SIFT names it, ORB starts it, ECC refines it) lands on the page's face: the
        # same start and OpenCV 5's ECC on both sides (web/site/ecc.js; OpenCV.js's own settled up to 2 px away)
        r = rectify.rectify(rgb, ts)
        assert r.ok and r.start == "orb"
        apart = np.abs(_corners(r.H, t) - _corners(np.reshape(js["H"], (3, 3)), t)).max()
        assert apart < 1e-3, (i, apart, r.refined_px, js["moved"])


def _shifts(t, photos) -> list[float]:
    """How far the fit's corners move (matching px) when one outlier match is left out, ten outliers per photo."""
    train, out = orb.of_template(t), []
    for rgb in photos:
        photo = orb.describe_photo(rgb)
        q, k = orb.ratio_matches(photo, train)
        fit = orb.homography(photo, train, q, k)
        p = orb._project(fit.H, train.pts[k].astype(np.float64))
        far = np.flatnonzero(np.hypot(*(p - photo.pts[q]).T) > 3 * orb.MAGSAC_PX)[:10]
        for j in far:
            keep = np.arange(len(q)) != j
            other = orb.homography(photo, train, q[keep], k[keep])
            out.append(float(np.abs(_corners(fit.H, t) - _corners(other.H, t)).max()))
    return out


def test_polish_keeps_the_fit_where_it_was_when_a_match_changes(synth, monkeypatch):
    """What ORB descriptors a bit apart do (a match more or less): MAGSAC alone moves the corners by a large part of
    a pixel (its samples change with the list); polished to its fixed point, the fit mostly does not move at all."""
    t, photos = synth
    polished = _shifts(t, photos)
    monkeypatch.setattr(orb, "POLISH", 0)
    plain = _shifts(t, photos)
    assert len(polished) >= 20
    assert np.median(polished) < 1e-3, polished
    assert np.median(plain) > 0.05, plain


def test_rectify_starts_from_the_pages_orb_fit(synth, monkeypatch):
    """Python names the product by SIFT, then starts ECC from the ORB fit the page computes; GENUINE_START=sift
    (rectify.ORB_START) keeps SIFT's fit."""
    t, photos = synth
    ts = rectify.TemplateSet([t])
    r = rectify.rectify(photos[0], ts)
    assert r.ok and r.start == "orb" and r.to_dict()["start"] == "orb"
    photo = orb.describe_photo(photos[0])
    fit = orb.face_fit(photo, t)
    H0 = np.linalg.inv(rectify.pixel_scaling(photo.scale)) @ fit.H
    monkeypatch.setattr(rectify, "REFINE", False)
    plain = rectify.rectify(photos[0], ts)
    assert np.abs(_corners(plain.H, t) - _corners(H0, t)).max() < 1e-6   # ECC off: the ORB fit itself
    monkeypatch.setattr(rectify, "ORB_START", False)
    sift = rectify.rectify(photos[0], ts)
    assert sift.ok and sift.start == "sift"
    assert np.abs(_corners(sift.H, t) - _corners(H0, t)).max() > 0.01
