"""SynthPack: layout, manifest, item-level splits, hold-out families, determinism, no shortcuts."""
from __future__ import annotations

import csv
import io
import json
from collections import defaultdict

import numpy as np
import pytest
from PIL import Image

from conftest import TINY
from train.layout import discover
from train.synthpack.barcode import check_digit, ean13_modules, is_valid, with_check_digit
from train.synthpack.defects import FAMILIES, REGION, SEVERITY, counterfeit
from train.synthpack.design import make_design
from train.synthpack.generate import generate
from train.synthpack.render import Item, render


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
    assert files_a == files_b and len(files_a) == 3 * 2 * 2 + 2
    for f in files_a:
        assert (tmp_path / "a" / f).read_bytes() == (tmp_path / "b" / f).read_bytes(), f
    generate(tmp_path / "c", **{**cfg, "seed": 1})
    assert (tmp_path / "c" / "manifest.csv").read_bytes() != (tmp_path / "a" / "manifest.csv").read_bytes()


def test_products_do_not_depend_on_product_count():
    assert make_design(5, 1) == make_design(5, 1)
    assert make_design(5, 1).name != make_design(5, 2).name or make_design(5, 1).primary != make_design(5, 2).primary


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
    from train.shortcuts import audit

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
    with pytest.raises(SystemExit, match="not empty"):
        generate(tmp_path, **{**TINY, "products": 1, "items_per_class": 1})
    with pytest.raises(SystemExit, match="no synthpack.json"):
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
                                     ({"difficulty": "insane"}, "difficulty")])
def test_bad_arguments(tmp_path, kw, msg):
    with pytest.raises(ValueError, match=msg):
        generate(tmp_path / "x", **{**TINY, **kw})


def test_capture_strength_softens_the_nuisance(tmp_path):
    generate(tmp_path / "clean", **{**TINY, "products": 1, "items_per_class": 2}, capture=0.0)
    rows = _manifest(tmp_path / "clean")
    for r in rows:
        assert float(r["rotation"]) == 0.0 and float(r["scale"]) == 0.9 and int(r["jpeg_quality"]) == 95
        assert float(r["glare"]) == float(r["defocus"]) == float(r["motion"]) == 0.0
    assert json.loads((tmp_path / "clean" / "synthpack.json").read_text())["capture_strength"] == 0.0
    with pytest.raises(ValueError, match="capture strength"):
        generate(tmp_path / "bad", **TINY, capture=1.5)


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
