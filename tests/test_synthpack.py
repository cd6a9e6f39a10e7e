"""SynthPack: layout, manifest, item-level splits, hold-out families, determinism, no shortcuts, templates and
the known capture geometry."""
from __future__ import annotations

import csv
import io
import json
from collections import defaultdict

import numpy as np
import pytest
from conftest import TINY
from PIL import Image

from genuine.infer.errors import UsageError
from genuine.train.layout import discover
from genuine.train.synthpack import capture
from genuine.train.synthpack import generate as gen
from genuine.train.synthpack.barcode import check_digit, ean13_modules, is_valid, with_check_digit
from genuine.train.synthpack.defects import FAMILIES, REGION, SEVERITY, counterfeit
from genuine.train.synthpack.design import make_design
from genuine.train.synthpack.generate import face_size, generate, make_template
from genuine.train.synthpack.geometry import photo_corners, shot_corners
from genuine.train.synthpack.render import Item, render


def _manifest(root):
    with open(root / "manifest.csv", newline="") as fh:
        return list(csv.DictReader(fh))


def test_layout_and_manifest(tiny_synth):
    rows = _manifest(tiny_synth)
    assert len(rows) == 2 * 2 * 8 * 2
    for col in ("path", "product", "label", "item_id", "defect", "severity", "split", "jpeg_quality", "rotation"):
        assert col in rows[0]
    for r in rows:
        p = tiny_synth / r["path"]
        assert p.is_file() and p.parts[-3:-1] == (r["product"], r["label"])
        assert (r["defect"] == "") == (r["label"] == "genuine")
        assert 60 <= int(r["jpeg_quality"]) <= 95
    with Image.open(tiny_synth / rows[0]["path"]) as im:
        assert im.format == "JPEG" and im.size == (160, 120)
    # every defect family appears in each product
    fams = {(r["product"], r["defect"]) for r in rows if r["label"] == "counterfeit"}
    assert len(fams) == 2 * len(FAMILIES)
    ds = discover(tiny_synth)  # the generic layout reader understands it
    assert ds.layout == "products" and len(ds.records) == len(rows) and not ds.warnings
    info = json.loads((tiny_synth / "synthpack.json").read_text())
    assert info["photos"] == len(rows) and info["families"] == list(FAMILIES)


def test_splits_are_by_item(tiny_synth):
    rows = _manifest(tiny_synth)
    splits = defaultdict(set)
    for r in rows:
        splits[r["item_id"]].add(r["split"])
    assert all(len(s) == 1 for s in splits.values())
    for label in ("genuine", "counterfeit"):
        assert {r["split"] for r in rows if r["label"] == label} == {"train", "val", "test"}
    # item ids do not reveal the label
    ids = sorted(splits)
    labels = [next(r["label"] for r in rows if r["item_id"] == i) for i in ids]
    assert labels != sorted(labels) and labels != sorted(labels, reverse=True)


def test_holdout_families_only_in_test(tmp_path):
    generate(tmp_path / "h", **{**TINY, "products": 1, "items_per_class": 16, "photos_per_item": 1}, holdout=["colour", "barcode"])
    rows = _manifest(tmp_path / "h")
    held = [r for r in rows if r["defect"] in ("colour", "barcode")]
    assert held and {r["split"] for r in held} == {"test"}
    assert {r["defect"] for r in rows if r["split"] == "train" and r["defect"]} == set(FAMILIES) - {"colour", "barcode"}
    assert json.loads((tmp_path / "h" / "synthpack.json").read_text())["holdout_defects"] == ["colour", "barcode"]


def test_deterministic_whatever_the_workers(tmp_path):
    cfg = {**TINY, "products": 1, "items_per_class": 3}
    generate(tmp_path / "a", **{**cfg, "workers": 1})
    generate(tmp_path / "b", **{**cfg, "workers": 2})
    files_a = sorted(p.relative_to(tmp_path / "a") for p in (tmp_path / "a").rglob("*") if p.is_file())
    files_b = sorted(p.relative_to(tmp_path / "b") for p in (tmp_path / "b").rglob("*") if p.is_file())
    assert files_a == files_b and len(files_a) == 3 * 2 * 2 + 2 + 1  # photos, manifest, json, one template
    for f in files_a:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    generate(tmp_path / "c", **{**cfg, "seed": 1})
    assert (tmp_path / "c" / "manifest.csv").read_bytes() != (tmp_path / "a" / "manifest.csv").read_bytes()


def test_products_do_not_depend_on_product_count(tmp_path):
    """Product k of a seed is the same design whether the pack has 2 products or 3: a bigger benchmark extends a
    smaller one instead of replacing it."""
    kw = dict(items_per_class=2, photos_per_item=1, size=160, seed=5, workers=1, progress=False)
    generate(tmp_path / "two", products=2, **kw)
    generate(tmp_path / "three", products=3, **kw)
    two = sorted(p.name for p in (tmp_path / "two").iterdir() if p.is_dir())
    three = sorted(p.name for p in (tmp_path / "three").iterdir() if p.is_dir())
    assert len(two) == 2 and three[:2] == two and len(three) == 3
    for name in two:   # the same artwork, pixel for pixel
        a = np.asarray(Image.open(tmp_path / "two" / name / "template.png"))
        b = np.asarray(Image.open(tmp_path / "three" / name / "template.png"))
        assert a.shape == b.shape and np.array_equal(a, b)
    assert make_design(5, 1) != make_design(5, 2)      # and the products differ from one another


def test_ean13():
    assert check_digit("400638133393") == 1 and is_valid("4006381333931")
    assert not is_valid("4006381333932")
    m = ean13_modules("4006381333931")
    assert len(m) == 95 and m.startswith("101") and m.endswith("101") and m[45:50] == "01010"
    for i in range(5):
        assert is_valid(make_design(0, i).ean)
    fake, _, _ = counterfeit(make_design(0, 0), "barcode", 0.2, np.random.default_rng(0))
    assert not is_valid(fake.ean) and fake.ean_printed != fake.ean
    with pytest.raises(ValueError):
        with_check_digit("123")


@pytest.mark.parametrize("family", FAMILIES)
def test_defects_are_visible_at_full_resolution_even_when_hard(family):
    """At the lowest hard severity, a close look at the print finds each defect."""
    d = make_design(0, 0)
    item = Item("00012345", "AB12", (0.0, 0.0), 1.0, 0.2, 7)
    genuine, boxes = render(d, item, 800)
    sev = SEVERITY["hard"][0]
    for seed in range(3):
        fake_d, fx, _ = counterfeit(d, family, sev, np.random.default_rng(seed), 800)
        fake, _ = render(fake_d, item, 800, fx)
        diff = np.abs(np.asarray(genuine, np.int16) - np.asarray(fake, np.int16)).max(axis=2)
        if family == "colour":  # a colour shift changes a whole ink a little
            assert (diff > 4).mean() > 0.02
        else:
            x0, y0, x1, y1 = boxes[REGION[family]]
            assert (diff[y0:y1, x0:x1] > 24).mean() > 0.003, (family, seed)


def test_global_statistics_cannot_tell_the_classes_apart(tmp_path):
    """No capture shortcut: logistic regression on mean/std/sharpness/file size stays near chance at hard."""
    from genuine.train.shortcuts import audit

    generate(tmp_path / "hard", **{**TINY, "products": 3, "items_per_class": 16, "difficulty": "hard"})
    recs = discover(tmp_path / "hard").records
    report = audit(recs, workers=1)
    assert report["auroc"] <= 0.65, report
    assert max(report["per_feature"].values()) <= 0.65, report

    # Positive control: the same audit does catch a planted shortcut (counterfeits shot brighter).
    for r in recs:
        if r.label == "counterfeit":
            with Image.open(r.path) as im:
                x = np.clip(np.asarray(im, np.float32) * 1.25, 0, 255).astype(np.uint8)
            buf = io.BytesIO()
            Image.fromarray(x).save(buf, "JPEG", quality=90)
            r.path.write_bytes(buf.getvalue())
    assert audit(recs, workers=1)["auroc"] > 0.8


def test_refuses_to_overwrite_what_it_did_not_make(tmp_path):
    (tmp_path / "mine.txt").write_text("precious")
    with pytest.raises(UsageError, match="not empty"):
        generate(tmp_path, **{**TINY, "products": 1, "items_per_class": 1})
    with pytest.raises(UsageError, match="no synthpack.json"):
        generate(tmp_path, **{**TINY, "products": 1, "items_per_class": 1}, force=True)
    assert (tmp_path / "mine.txt").read_text() == "precious"


def test_force_replaces_a_previous_synthpack_only(tmp_path):
    out = tmp_path / "sp"
    generate(out, **{**TINY, "products": 2, "items_per_class": 1, "photos_per_item": 1})
    (out / "notes.txt").write_text("keep me")
    generate(out, **{**TINY, "products": 1, "items_per_class": 1, "photos_per_item": 1}, force=True)
    assert (out / "notes.txt").exists()
    assert len(list(out.rglob("*.jpg"))) == 2 and len(_manifest(out)) == 2


@pytest.mark.parametrize("kw, msg", [({"holdout": ["glitter"]}, "unknown defect"),
                                     ({"ratios": (0.5, 0.5, 0.5)}, "split ratios"),
                                     ({"difficulty": "insane"}, "difficulty"), ({"capture": 2.0}, "capture")])
def test_bad_arguments_are_refused_before_anything_is_deleted(tmp_path, kw, msg):
    out = tmp_path / "x"
    generate(out, **{**TINY, "products": 1, "items_per_class": 1, "photos_per_item": 1})
    before = sorted(p.relative_to(out) for p in out.rglob("*"))
    with pytest.raises(UsageError, match=msg):
        generate(out, **{**TINY, **kw}, force=True)        # --force with a typo: the previous SynthPack stays
    assert sorted(p.relative_to(out) for p in out.rglob("*")) == before


def test_capture_strength_softens_the_nuisance(tmp_path):
    generate(tmp_path / "clean", **{**TINY, "products": 1, "items_per_class": 2}, capture=0.0)
    rows = _manifest(tmp_path / "clean")
    for r in rows:
        assert float(r["rotation"]) == 0.0 and float(r["scale"]) == 0.9 and int(r["jpeg_quality"]) == 95
        assert float(r["glare"]) == float(r["defocus"]) == float(r["motion"]) == 0.0
    assert json.loads((tmp_path / "clean" / "synthpack.json").read_text())["capture_strength"] == 0.0
    with pytest.raises(ValueError, match="capture strength"):
        generate(tmp_path / "bad", **TINY, capture=1.5)


def test_phone_sizes_are_saved_as_a_phone_would():
    """From capture.PHONE_SIZE up a photo gets a phone camera's JPEG quality (88-95) and luma-only grain, so it
    weighs what a phone's photo does; below it the stress case's qualities (60-95) and per-channel noise stay."""
    rng = np.random.default_rng(0)
    assert {capture._jpeg_quality(rng, capture.PHONE_SIZE - 1, 1.0) for _ in range(400)} == set(range(60, 96))
    assert {capture._jpeg_quality(rng, capture.PHONE_SIZE, 1.0) for _ in range(400)} == set(range(88, 96))
    assert capture._jpeg_quality(rng, capture.PHONE_SIZE, 0.0) == 95
    flat = np.full((120, 160, 3), 128, np.uint8)
    luma = capture._sensor_noise(flat, 5.0, np.random.default_rng(0), phone=True)
    rgb = capture._sensor_noise(flat, 5.0, np.random.default_rng(0), phone=False)
    assert luma.std() > 3 and (luma == luma[..., :1]).all()     # grain, the same on R, G and B
    assert rgb.std() > 3 and (rgb[..., 0] != rgb[..., 1]).mean() > 0.5
    tpl = make_template(0, 0, 384)
    for k in range(2):
        data, p = capture.photograph(tpl, np.random.default_rng(k), 1600)
        assert 88 <= p["jpeg_quality"] <= 95 and 4.0 <= p["noise"] <= 8.0
        assert len(data) > 200_000   # a phone's 2 MP JPEG, not a smooth render's 0.1-0.2 MB
        with Image.open(io.BytesIO(data)) as im:
            assert im.format == "JPEG" and im.size == (1600, 1200)


def test_twins_differ_by_the_defect_alone_and_only_in_train(tmp_path):
    cfg = {**TINY, "products": 1, "items_per_class": 8, "photos_per_item": 1}
    generate(tmp_path / "plain", **cfg)
    generate(tmp_path / "tw", **cfg, twins=True)
    plain, rows = _manifest(tmp_path / "plain"), _manifest(tmp_path / "tw")
    twins = [r for r in rows if r["item_id"].endswith("t")]
    fakes = {r["item_id"]: r for r in rows if r["label"] == "counterfeit" and r["split"] == "train"}
    assert twins and len(twins) == len(fakes) and {r["split"] for r in twins} == {"train"}
    # val and test are exactly the plain benchmark's, byte for byte
    for r in plain:
        assert (tmp_path / "tw" / r["path"]).read_bytes() == (tmp_path / "plain" / r["path"]).read_bytes()
    assert len(rows) == len(plain) + len(twins)
    for t in twins:
        f = fakes[t["item_id"][:-1]]
        assert t["label"] == "genuine" and t["defect"] == "" and t["serial"] == f["serial"]
        assert all(t[k] == f[k] for k in ("rotation", "scale", "cx", "exposure", "jpeg_quality"))  # same capture
        a = np.asarray(Image.open(tmp_path / "tw" / t["path"]), np.int16)
        b = np.asarray(Image.open(tmp_path / "tw" / f["path"]), np.int16)
        assert 0 < (np.abs(a - b).max(-1) > 12).mean() < 0.5  # they differ, but only where the defect is


def _tpl_corners(w: int, h: int) -> np.ndarray:
    return np.array([[0, 0], [w, 0], [w, h], [0, h]], np.float32)


def _face_back(photo, corners, w: int, h: int, shift=(0.0, 0.0)) -> np.ndarray:
    """Warp a photo onto the template frame, template pixel p showing the face at p - shift (OpenCV: centres at
    integers, hence the -0.5 on both sides of PIL-convention corners)."""
    import cv2

    m = cv2.getPerspectiveTransform(_tpl_corners(w, h) + np.float32(shift) - 0.5,
                                    (np.asarray(corners) - 0.5).astype(np.float32))
    return cv2.warpPerspective(photo, m, (w, h), flags=cv2.INTER_LINEAR | cv2.WARP_INVERSE_MAP,
                               borderMode=cv2.BORDER_REPLICATE)


def _mad(face: np.ndarray, tpl: np.ndarray) -> float:
    """Mean absolute difference after a per-channel gain and offset (capture light is not geometry), inner 94%."""
    h, w = tpl.shape[:2]
    inner = slice(int(0.03 * h), h - int(0.03 * h)), slice(int(0.03 * w), w - int(0.03 * w))
    a, t = face[inner].reshape(-1, 3).astype(np.float64), tpl[inner].reshape(-1, 3).astype(np.float64)
    err = []
    for c in range(3):
        x = np.stack([a[:, c], np.ones(len(a))], 1)
        coef = np.linalg.lstsq(x, t[:, c], rcond=None)[0]
        err.append(np.abs(x @ coef - t[:, c]).mean())
    return float(np.mean(err))


def test_templates_are_written_deterministic_and_not_photos(tiny_synth, tmp_path):
    rows = _manifest(tiny_synth)
    info = json.loads((tiny_synth / "synthpack.json").read_text())
    products = sorted({r["product"] for r in rows})
    assert info["templates"] == {p: f"{p}/template.png" for p in products}
    for i, p in enumerate(products):
        with Image.open(tiny_synth / info["templates"][p]) as im:
            assert im.format == "PNG" and im.mode == "RGB" and im.size == face_size(160) == (152, 94)
            assert np.array_equal(np.asarray(im), np.asarray(make_template(0, i, 160)))
    # not photos: the dataset reader, by manifest or by folders, never sees them
    ds = discover(tiny_synth)
    assert len(ds.records) == len(rows) and not ds.warnings and not ds.missing
    assert not any(r.rel.endswith("template.png") for r in ds.records)
    folders = tmp_path / "folders"
    for p in products:
        (folders / p).mkdir(parents=True)
        (folders / p / "template.png").write_bytes((tiny_synth / p / "template.png").read_bytes())
        (folders / p / "genuine").symlink_to(tiny_synth / p / "genuine")
    assert all(not r.rel.endswith("template.png") for r in discover(folders).records)
    from genuine.train.check import check_dataset

    report = check_dataset(tiny_synth, workers=1)
    assert report["photos"] == len(rows) and report["bad_files"] == []
    # byte-identical across runs
    cfg = {**TINY, "items_per_class": 1, "photos_per_item": 1}
    generate(tmp_path / "a", **cfg)
    generate(tmp_path / "b", **{**cfg, "workers": 2})
    for p in products:
        assert (tmp_path / "a" / p / "template.png").read_bytes() == (tmp_path / "b" / p / "template.png").read_bytes()
        assert (tmp_path / "a" / p / "template.png").read_bytes() == (tiny_synth / p / "template.png").read_bytes()


def test_templates_change_nothing_else(tmp_path, monkeypatch):
    """Photos and manifest are the same bytes whether templates are written or not (no shared random draws)."""
    cfg = {**TINY, "products": 1, "items_per_class": 2}
    generate(tmp_path / "with", **cfg)
    monkeypatch.setattr(gen, "write_template", lambda *a, **k: None)
    generate(tmp_path / "without", **cfg)
    rows = _manifest(tmp_path / "with")
    assert (tmp_path / "with" / "manifest.csv").read_bytes() == (tmp_path / "without" / "manifest.csv").read_bytes()
    for r in rows:
        assert (tmp_path / "with" / r["path"]).read_bytes() == (tmp_path / "without" / r["path"]).read_bytes()


def test_force_removes_its_templates_only(tmp_path):
    out = tmp_path / "sp"
    generate(out, **{**TINY, "products": 2, "items_per_class": 1, "photos_per_item": 1})
    p1 = _manifest(out)[-1]["product"]
    (out / "00-mine").mkdir()
    (out / "00-mine" / "template.png").write_bytes(b"a user's file")
    generate(out, **{**TINY, "products": 1, "items_per_class": 1, "photos_per_item": 1}, force=True)
    assert not (out / p1).exists()  # product 1's photos and template are gone, and its folder
    assert (out / "00-mine" / "template.png").read_bytes() == b"a user's file"
    assert list(json.loads((out / "synthpack.json").read_text())["templates"]) == [_manifest(out)[0]["product"]]


@pytest.mark.parametrize("size, strength", [(160, 1.0), (384, 0.5)])
def test_photo_corners_replay_the_capture_exactly(tmp_path, monkeypatch, size, strength):
    """Every photo, twins included: the corners photograph() used are exactly what photo_corners() replays."""
    placed = []

    def spy(*a, **k):
        params, dst = place(*a, **k)
        placed.append(dst)
        return params, dst

    place = capture.place
    monkeypatch.setattr(capture, "place", spy)
    out = tmp_path / "sp"
    generate(out, **{**TINY, "products": 1, "items_per_class": 8, "photos_per_item": 2, "size": size},
             capture=strength, twins=True)
    rows = _manifest(out)
    assert len(placed) == len(rows) and any(r["item_id"].endswith("t") for r in rows)
    for r, dst in zip(rows, placed):  # rows are written in the order the photos were taken
        assert np.array_equal(photo_corners(out, r), dst), r["path"]
        c = photo_corners(out, r)
        assert c.shape == (4, 2)
        assert c[0, 0] < c[1, 0] and c[3, 0] < c[2, 0] and c[0, 1] < c[3, 1] and c[1, 1] < c[2, 1]  # TL TR BR BL


@pytest.mark.parametrize("size, strength", [(160, 1.0), (160, 0.0), (384, 1.0), (384, 0.0)])
def test_photo_corners_warp_photos_onto_their_template(tmp_path, size, strength):
    """The replayed corners bring a photo's face back onto its template: much closer than a 3%-off warp, and
    once the item's print offset is allowed for (it shifts the artwork against the die cut), closer still."""
    out = tmp_path / "sp"
    generate(out, **{**TINY, "products": 1, "items_per_class": 3, "size": size}, capture=strength)
    info = json.loads((out / "synthpack.json").read_text())
    rows = [r for r in _manifest(out) if r["label"] == "genuine"]
    tpl = np.asarray(Image.open(out / info["templates"][rows[0]["product"]]).convert("RGB"))
    h, w = tpl.shape[:2]
    assert (w, h) == face_size(size)
    plain, compensated = [], []
    for r in rows:
        photo = np.asarray(Image.open(out / r["path"]).convert("RGB"))
        c = photo_corners(info, r)
        offset = np.array([float(r["print_dx"]), float(r["print_dy"])]) * w / 100  # artwork shift, template px
        ok = _mad(_face_back(photo, c, w, h, -offset), tpl)
        d = 0.03 * w
        off = min(_mad(_face_back(photo, c, w, h, -offset + d * np.array([np.cos(a), np.sin(a)])), tpl)
                  for a in np.arange(8) * np.pi / 4)
        assert ok < 0.95 * off, (r["path"], ok, off)
        plain.append(_mad(_face_back(photo, c, w, h), tpl))
        compensated.append(ok)
    if size == 384:
        assert np.mean(compensated) < np.mean(plain)


@pytest.mark.parametrize("strength", [1.0, 0.0])
def test_the_template_photographed_lands_on_the_corners_to_a_fraction_of_a_pixel(strength):
    """A template shot with an item's capture (no print tolerances): the exact corners beat a 0.5 px shift."""
    q = gen.Plan(0, 1, 5, "genuine", "", 0.0, "train", 1, 384, strength)
    tpl = make_template(0, 1, 384)
    w, h = tpl.size
    tpl_a = np.asarray(tpl)
    info = {"seed": 0, "products": 2, "photos_per_item": 1, "size": 384, "capture_strength": strength}
    for k in range(3):
        photo = np.asarray(Image.open(io.BytesIO(gen.shoot(q, tpl, k)[0])).convert("RGB"))
        c = photo_corners(info, {"product": make_design(0, 1).slug, "item_id": f"{make_design(0, 1).slug}-0005",
                                 "photo": str(k)})
        assert np.array_equal(c, shot_corners(q, k))
        ok = _mad(_face_back(photo, c, w, h), tpl_a)
        for sx, sy in ((0.5, 0), (-0.5, 0), (0, 0.5), (0, -0.5)):
            assert ok < _mad(_face_back(photo, c, w, h, (sx, sy)), tpl_a), (k, sx, sy)
