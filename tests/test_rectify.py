"""Rectification: known homographies recovered, wrong or missing packages refused, faces from the full decode."""
from __future__ import annotations

import cv2
import numpy as np
import pytest

from genuine.infer.rectify import RectifyError, Template, TemplateSet, rectify, warp_face
from genuine.train.synthpack.generate import _design
from genuine.train.synthpack.render import Item, render

NOMINAL = dict(serial="00000000", offset=(0.0, 0.0), ink=1.0, wear=0.0, wear_seed=0)


def artwork(p: int, width: int = 360) -> np.ndarray:
    d = _design(0, p)
    img, _ = render(d, Item(lot=f"{d.lot_prefix}00", **NOMINAL), width)
    return np.asarray(img.convert("RGB"))


def clutter(w: int, h: int, seed: int = 0) -> np.ndarray:
    rng = np.random.default_rng(seed)
    bg = np.full((h, w, 3), rng.integers(60, 200, 3), np.uint8)
    for _ in range(25):
        x, y = int(rng.integers(0, w)), int(rng.integers(0, h))
        cv2.rectangle(bg, (x, y), (x + int(rng.integers(10, w // 3)), y + int(rng.integers(10, h // 3))),
                      tuple(int(c) for c in rng.integers(0, 256, 3)), -1)
    return cv2.GaussianBlur(bg, (0, 0), 3)


def photograph(tpl: np.ndarray, corners: np.ndarray, w: int, h: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """The template pasted into a cluttered photo at `corners` (photo pixels); returns (photo, true H)."""
    th, tw = tpl.shape[:2]
    src = np.array([[-0.5, -0.5], [tw - 0.5, -0.5], [tw - 0.5, th - 0.5], [-0.5, th - 0.5]], np.float32)
    H = cv2.getPerspectiveTransform(src, corners.astype(np.float32))
    photo = clutter(w, h, seed)
    warped = cv2.warpPerspective(tpl, H, (w, h), flags=cv2.INTER_AREA)
    mask = cv2.warpPerspective(np.full((th, tw), 255, np.uint8), H, (w, h)) > 127
    photo[mask] = warped[mask]
    return photo, H


@pytest.fixture(scope="module")
def templates():
    return TemplateSet([Template.from_image(f"p{p}", artwork(p), f"p{p}.png") for p in range(3)])


def test_recovers_known_homography(templates):
    tpl = templates.templates[1].image
    corners = np.array([[110, 70], [430, 95], [415, 300], [90, 270]], np.float64)
    photo, H = photograph(tpl, corners, 520, 390)
    r = rectify(photo, templates)
    assert r.ok, r.reason
    assert r.product == "p1"
    assert r.inliers >= 40
    assert np.abs(r.corners - corners).max() < 2.0          # within a pixel or two at every corner
    th, tw = tpl.shape[:2]
    face = r.face.astype(np.float32)
    assert face.shape == tpl.shape
    inner = (slice(8, th - 8), slice(8, tw - 8))
    assert np.abs(face[inner] - tpl[inner]).mean() < 12      # the face is the artwork again
    # ...and clearly closer to it than to another product's artwork
    other = cv2.resize(templates.templates[2].image, (tw, th)).astype(np.float32)
    assert np.abs(face[inner] - other[inner]).mean() > 2 * np.abs(face[inner] - tpl[inner]).mean()


def test_ecc_brings_two_different_starts_to_the_true_alignment(templates):
    """The phone page starts from ORB's homography, Python from SIFT's; ECC (rectify.refine) takes both to the same
    face. A start off by 4-6 photo pixels at the corners comes back within half a pixel of the truth; without the
    refinement it stays where it started."""
    from genuine.infer.rectify import frame_corners, refine

    t = templates.templates[1]
    corners = np.array([[110, 70], [430, 95], [415, 300], [90, 270]], np.float64)
    photo, H = photograph(t.image, corners, 520, 390)
    c0 = frame_corners(*t.size)[None]
    err = lambda G: np.abs(cv2.perspectiveTransform(c0, G)[0] - corners).max()   # noqa: E731
    starts = [cv2.getPerspectiveTransform(c0[0].astype(np.float32), (corners + d).astype(np.float32)).astype(np.float64)
              for d in (np.array([[4, -3], [-5, 2], [3, 4], [-4, -5]]), np.array([[-3, 5], [4, 3], [-5, -2], [2, -4]]))]
    assert min(err(S) for S in starts) > 4
    refined = [refine(photo, S, t) for S in starts]
    for G, moved in refined:
        assert moved > 0 and err(G) < 0.5
    assert np.abs(cv2.perspectiveTransform(c0, refined[0][0]) - cv2.perspectiveTransform(c0, refined[1][0])).max() < 0.5


def test_face_comes_from_the_full_resolution_decode(templates):
    """The homography found on the small matching copy warps the full photo: a 4x larger photo gives a sharper face."""
    tpl = templates.templates[0].image
    corners = np.array([[60, 50], [330, 60], [320, 230], [50, 220]], np.float64)
    small, _ = photograph(tpl, corners / 1.0, 400, 300)
    big, _ = photograph(tpl, corners * 4 + 1.5, 1600, 1200)
    faces = [rectify(p, templates, face_side=None) for p in (small, big)]
    assert all(f.ok for f in faces)
    assert abs(faces[1].scale / faces[0].scale - 4) < 0.2
    inner = (slice(10, -10), slice(10, -10))
    err = [np.abs(f.face.astype(np.float32) - tpl)[inner].mean() for f in faces]
    detail = [cv2.Laplacian(cv2.cvtColor(f.face, cv2.COLOR_RGB2GRAY), cv2.CV_32F)[inner].var() for f in faces]
    assert err[1] < 0.8 * err[0] and detail[1] > 1.5 * detail[0]


def test_refuses_photos_without_the_package(templates):
    r = rectify(clutter(480, 360, seed=3), templates)
    assert not r.ok and r.product is None and r.face is None
    assert r.reason_code in ("no_package", "not_covered") and r.reason
    flat = np.full((300, 400, 3), 128, np.uint8)
    r = rectify(flat, templates)
    assert not r.ok and r.reason_code == "no_package" and "fill the frame" in r.reason


def test_refuses_a_product_without_a_template(templates):
    """A well-lit, sharp photo of another product (not in the set) is 'not covered', not a guess."""
    tpl = artwork(5)
    photo, _ = photograph(tpl, np.array([[40, 40], [440, 50], [430, 300], [45, 290]], np.float64), 480, 360)
    r = rectify(photo, templates)
    assert not r.ok and r.product is None
    assert r.reason_code == "not_covered" and "not covered" in r.reason
    # and asking for one product's template only gives a refusal too, never that product
    # (then the product is known to have a template, so the refusal does not say "not covered")
    r = rectify(photo, templates, product="p0")
    assert not r.ok and r.reason_code in ("misaligned", "no_package")


def test_checks_geometry(templates):
    tpl = templates.templates[2].image
    # Package far too small in the frame: found, but the officer is told to move closer.
    photo, _ = photograph(tpl, np.array([[700, 500], [790, 505], [788, 560], [702, 556]], np.float64), 1280, 960)
    r = rectify(photo, templates, limits={"min_inliers": 8})
    assert not r.ok and r.reason_code in ("small", "misaligned", "no_package")
    # Half of the package outside the photo: "cut".
    photo, _ = photograph(tpl, np.array([[200, 40], [600, 40], [600, 290], [200, 290]], np.float64), 420, 330)
    r = rectify(photo, templates)
    assert not r.ok and r.reason_code == "cut" and r.product == "p2"   # it says which package it saw


def test_warp_face_is_the_inverse_of_the_photo_warp(templates):
    t = templates.templates[0]
    H = np.array([[0.9, 0.1, 30], [-0.05, 0.95, 20], [1e-4, 0, 1]])
    photo = cv2.warpPerspective(t.image, H, (480, 360))
    face = warp_face(photo, H, t, face_side=None).astype(np.float32)
    h, w = t.image.shape[:2]
    assert np.abs(face[10:h - 10, 10:w - 10] - t.image[10:h - 10, 10:w - 10]).mean() < 8


def test_template_needs_detail():
    with pytest.raises(RectifyError, match="keypoints"):
        Template.from_image("blank", np.full((200, 300, 3), 200, np.uint8), "blank.png")
    with pytest.raises(RectifyError, match="no templates"):
        TemplateSet([])


@pytest.fixture(scope="module")
def synth384(tmp_path_factory):
    """2 products x 3 genuine + 3 counterfeit items x 1 photo at 384 px, with their templates."""
    from genuine.train.synthpack.generate import generate

    out = tmp_path_factory.mktemp("synth384") / "s"
    generate(out, products=2, items_per_class=3, photos_per_item=1, size=384, difficulty="medium", seed=0,
             workers=1, progress=False)
    return out


def test_rectify_cli_names_products_and_writes_faces(synth384, tmp_path, capsys):
    import json

    from genuine.cli import main as cli

    photos = sorted(synth384.glob("*/*/*.jpg"))
    (tmp_path / "notes.txt").write_text("not a photo")
    broken = tmp_path / "broken.jpg"
    broken.write_bytes(photos[0].read_bytes()[:300])
    code = cli(["rectify", *(str(p) for p in synth384.glob("*/*/")), str(broken), "--templates", str(synth384), "--out", str(tmp_path / "faces"),
                "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 3                                     # the truncated photo is an error, named, and the rest runs
    bad = [r for r in rows if r["path"] == str(broken)]
    assert bad and bad[0]["error_kind"] in ("truncated", "unreadable") and bad[0]["error"]
    good = [r for r in rows if r["path"] != str(broken)]
    assert len(good) == len(photos)
    right = [r for r in good if r["ok"] and r["path"].split("/")[-3] == r["product"]]
    assert len(right) >= len(photos) - 1
    for r in right:
        assert r["inliers"] >= 15 and len(r["corners"]) == 4 and r["face_quality"]["width"] > 300
        assert (tmp_path / "faces" / (r["path"].split("/")[-1][:-4] + ".png")).is_file()


def test_rectify_cli_refuses_a_product_without_template(synth384, tmp_path, capsys):
    import json
    import shutil

    from genuine.cli import main as cli

    only = tmp_path / "only"
    shutil.copytree(synth384 / "00-fiisfi", only / "00-fiisfi")
    photos = sorted((synth384 / "01-supofi").glob("*/*.jpg"))
    code = cli(["rectify", *map(str, photos), "--templates", str(only), "--json"])
    rows = [json.loads(line) for line in capsys.readouterr().out.splitlines()]
    assert code == 1 and len(rows) == len(photos)
    assert all(r["product"] is None and not r["ok"] and r["reason"] for r in rows)
    assert sum(r["reason_code"] == "not_covered" for r in rows) >= len(rows) - 1
    assert cli(["rectify", str(photos[0]), "--templates", str(tmp_path / "nothing")]) == 2


@pytest.mark.parametrize("orientation", [1, 6])
def test_rectify_photo_decodes_scaled_and_reports_the_full_photo_frame(templates, tmp_path, orientation):
    """The comparator's input path decodes a big JPEG DCT-scaled, yet H and the corners are in the full photo's
    pixels (EXIF-rotated too), and the density counts the pixels the face was actually made from."""
    import io

    from PIL import Image

    from genuine.infer.photo import load_photo
    from genuine.infer.quality import assess_face
    from genuine.infer.rectify import rectify_photo

    tpl = templates.templates[2].image
    corners = np.array([[400, 260], [1720, 360], [1660, 1220], [360, 1100]], np.float64)
    photo, _ = photograph(tpl, corners, 2080, 1560, seed=3)
    stored = Image.fromarray(photo)
    if orientation == 6:   # stored sideways, upright after EXIF: the same upright photo
        stored = stored.transpose(Image.Transpose.ROTATE_90)
    exif = Image.Exif()
    exif[0x0112] = orientation
    buf = io.BytesIO()
    stored.save(buf, "JPEG", quality=95, exif=exif.tobytes())
    path = tmp_path / "big.jpg"
    path.write_bytes(buf.getvalue())
    assert load_photo(path).size == (2080, 1560)
    from genuine.infer.photo import load_photo_scaled
    img, factor = load_photo_scaled(path, min_side=512)
    assert img.size == (1040, 780) and factor == (2.0, 2.0)

    r, seconds = rectify_photo(path, templates, (96, 64))       # decodes at 1/2: 1040x780 >= 512
    assert r.ok and r.product == "p2" and seconds > 0, r.reason
    full = rectify(np.asarray(load_photo(path)), templates)      # matching runs at 512 px either way
    assert full.ok and np.abs(r.corners - full.corners).max() < 8.0   # 2 decoded px, in full-photo pixels
    assert np.abs(r.corners - corners).max() < 20.0
    assert r.face.shape[1] == 192                                # the face at twice the model's input
    # ~1320 px wide on the photo, decoded at 1/2: ~660 decoded px for 96 input px
    assert 6.0 < r.density < 8.4
    assert "small" not in dict(assess_face(r.face[::2, ::2], r.density).issues)
    assert "small" in dict(assess_face(r.face[::2, ::2], 0.3).issues)


def test_the_same_photo_gets_the_same_homography_whatever_ran_before(synth384):
    """FLANN's randomised KD-trees draw from OpenCV's global generator: the answer for a photo must not depend on the
    process's history (other photos, other OpenCV calls, the thread count), or a rerun and a scan worker disagree."""
    from genuine.infer import keypoints
    from genuine.infer.rectify import rectify_photo
    from genuine.infer.templates import load_templates

    photos = sorted(synth384.glob("*/*/*.jpg"))

    def run(order, seed, threads):
        keypoints._INDEX.clear()
        cv2.setRNGSeed(seed)
        cv2.setNumThreads(threads)
        ts, out = load_templates(synth384), {}
        for p in order:
            cv2.randu(np.zeros((4, 4)), 0, 1)   # someone else's use of the generator in between
            r, _ = rectify_photo(p, ts, (160, 104))
            out[p] = (r.product, r.H)
        return out

    try:
        a, b = run(photos, 1, 2), run(photos[::-1], 12345, 1)
    finally:
        cv2.setNumThreads(-1)
    assert sum(a[p][1] is not None for p in photos) >= len(photos) - 1
    for p in photos:
        assert a[p][0] == b[p][0] and (a[p][1] is None) == (b[p][1] is None), p
        assert a[p][1] is None or np.array_equal(a[p][1], b[p][1]), p


def test_two_products_that_fit_equally_name_neither(templates):
    """The same artwork stored under two product names (a look-alike range, a store mix-up): the photo fits both
    equally, so the product is unknown and the officer is told what to photograph, not given a coin toss."""
    tpl = templates.templates[1].image
    twins = TemplateSet([*templates.templates, Template.from_image("p1-copy", tpl.copy(), "p1-copy.png")])
    photo, _ = photograph(tpl, np.array([[110, 70], [430, 95], [415, 300], [90, 270]], np.float64), 520, 390)
    r = rectify(photo, twins)
    assert not r.ok and r.product is None and r.reason_code == "ambiguous"
    assert "two products" in r.reason and "p1" in r.reason and "p1-copy" in r.reason
    assert rectify(photo, templates).product == "p1"           # without the rival, as before
