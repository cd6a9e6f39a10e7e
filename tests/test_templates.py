"""Templates: the store's templates table (round trip, export/import, old databases, stale keypoints), one loader
for every source, templates built from genuine photos, and the `genuine references add --template...` commands."""
from __future__ import annotations

import shutil
import sqlite3
import time
from pathlib import Path

import cv2
import numpy as np
import pytest
from PIL import Image

from genuine.cli import main as cli
from genuine.infer.keypoints import (
    KP_SIDE,
    KP_VERSION,
    MAX_FEATURES,
    SIFT_V1,
    RectifyError,
    Template,
    TemplateSet,
    root_sift,
    shrink,
)
from genuine.infer.photo import load_photo
from genuine.infer.rectify import rectify
from genuine.infer.references import ReferenceDB, ReferenceError
from genuine.infer.template_photos import template_from_photos
from genuine.infer.templates import load_templates
from genuine.train.synthpack.generate import generate

SIZE = 320  # the tiny set's 160 px is marginal for rectification
GROCERY = Path(__file__).resolve().parents[2] / "shared" / "data" / "grocery-packages"


@pytest.fixture(scope="session")
def synth(tmp_path_factory):
    """2 products x 3 genuine + 3 counterfeit items x 3 photos at 320 px, each with its artwork (template.png)."""
    out = tmp_path_factory.mktemp("tsynth") / "set"
    generate(out, products=2, items_per_class=3, photos_per_item=3, size=SIZE, difficulty="medium", seed=0,
             workers=1, progress=False)
    return out


def _products(root) -> list[Path]:
    return sorted(p for p in Path(root).iterdir() if p.is_dir())


def _photos(d: Path, label: str = "genuine") -> list[Path]:
    return sorted(d.glob(f"{label}/*.jpg"))


def _plain(path) -> Path:
    Image.new("RGB", (300, 200), (200, 30, 30)).save(path)
    return Path(path)


def _same(a, b) -> None:
    assert a.product == b.product and np.array_equal(a.image, b.image)
    assert np.array_equal(a.keypoints, b.keypoints) and np.array_equal(a.descriptors, b.descriptors)


# -- the store -------------------------------------------------------------------------------------------------
def test_templates_round_trip_through_store_export_and_import(synth, tmp_path):
    (p0, p1), db = _products(synth), ReferenceDB(tmp_path / "r.db", create=True)
    r = db.add_template(p0.name, p0 / "template.png", kind="artwork", note="print file v3", added_by="brand")
    assert r["added"] and r["existing"] is None
    assert not db.add_template(p0.name, p0 / "template.png")["added"]  # the same pixels are stored once
    back_sha = db.add_template("back-face", load_photo(p1 / "template.png"), source="p1.png")["sha256"]
    stored = db.templates()
    assert [t.product for t in stored] == [p0.name, "back-face"]
    _same(stored[0], r["template"])
    assert np.array_equal(stored[0].image, np.asarray(load_photo(p0 / "template.png")))  # lossless PNG blob
    assert db.summary() == [(p0.name, "template", 1), ("back-face", "template", 1)]
    row = db.rows(p0.name)[0]
    assert (row["label"], row["kind"], row["note"]) == ("template", "artwork", "print file v3")
    assert row["added_by"] == "brand"
    assert row["keypoints"] == len(r["template"].keypoints) and (row["width"], row["height"]) == r["template"].size

    db.export(tmp_path / "share.db", product=p0.name)
    fresh = ReferenceDB(tmp_path / "port2.db", create=True)
    assert fresh.import_from(tmp_path / "share.db") == {"added": 0, "templates": 1, "genuine_photos": 0}
    _same(fresh.templates()[0], r["template"])
    assert fresh.import_from(tmp_path / "share.db")["templates"] == 0  # duplicates skipped

    assert db.remove(p0.name, label="genuine") == 0 and len(db.templates()) == 2  # a label means photos only
    assert db.remove(p0.name) == 1 and [t.product for t in db.templates()] == ["back-face"]
    assert db.remove(sha256=back_sha) == 1 and db.templates() == []


def test_stale_keypoints_are_recomputed_and_stored(synth, tmp_path):
    p0 = _products(synth)[0]
    db = ReferenceDB(tmp_path / "r.db", create=True)
    t = db.add_template(p0.name, p0 / "template.png")["template"]
    db.conn.execute("UPDATE templates SET kp_version = 'sift-old', keypoints = ?, descriptors = ?",
                    (np.zeros((3, 2), np.float32).tobytes(), np.zeros((3, 128), np.float32).tobytes()))
    _same(db.templates()[0], t)
    assert db.conn.execute("SELECT kp_version FROM templates").fetchone()[0] == KP_VERSION


def test_plain_sift_descriptors_upgrade_in_place_to_rootsift(synth, tmp_path):
    """A store written with plain SIFT descriptors (sift-768-v1) keeps its keypoints (a view's package-only subset)
    and gets RootSIFT descriptors, the same as describing the template afresh."""
    p0 = _products(synth)[0]
    db = ReferenceDB(tmp_path / "r.db", create=True)
    t = db.add_template(p0.name, p0 / "template.png")["template"]
    keep = np.arange(len(t.keypoints)) % 2 == 0           # a subset, as a view keeps: recomputing would lose it
    grey = cv2.cvtColor(shrink(t.image, KP_SIDE)[0], cv2.COLOR_RGB2GRAY)
    plain = cv2.SIFT_create(nfeatures=2 * MAX_FEATURES).detectAndCompute(grey, None)[1].astype(np.float32)
    assert np.allclose(root_sift(plain), t.descriptors, atol=1e-6)   # what sift() returns is RootSIFT of plain SIFT
    db.conn.execute("UPDATE templates SET kp_version = ?, keypoints = ?, descriptors = ?",
                    (SIFT_V1, t.keypoints[keep].tobytes(), plain[keep].tobytes()))
    db.conn.commit()
    up = db.templates()[0]
    assert np.array_equal(up.keypoints, t.keypoints[keep])
    assert np.allclose(up.descriptors, t.descriptors[keep], atol=1e-6)
    row = db.conn.execute("SELECT kp_version, descriptors FROM templates").fetchone()
    assert row[0] == KP_VERSION and np.allclose(np.frombuffer(row[1], np.float32).reshape(-1, 128), up.descriptors)


def test_databases_made_before_templates_still_work(synth, tmp_path):
    """A store written before the templates table existed: opened, listed, imported from, exported."""
    old = tmp_path / "old.db"
    con = sqlite3.connect(old)
    con.executescript("CREATE TABLE meta (key TEXT PRIMARY KEY, value TEXT NOT NULL);"
                      "CREATE TABLE refs (id INTEGER PRIMARY KEY, product TEXT NOT NULL, label TEXT NOT NULL, "
                      "sha256 TEXT NOT NULL UNIQUE, embedding BLOB NOT NULL, model_sha256 TEXT NOT NULL, "
                      "added_at TEXT NOT NULL, added_by TEXT NOT NULL, note TEXT NOT NULL DEFAULT '', "
                      "source TEXT NOT NULL DEFAULT '', photo BLOB);"
                      "INSERT INTO refs VALUES (1, 'tea', 'genuine', 'abc', x'0000803f', 'm1', 't', 'me', '', 'a.jpg', "
                      "NULL);"
                      "INSERT INTO meta VALUES ('model_sha256', '\"m1\"');")
    con.commit()
    con.close()
    p0 = _products(synth)[0]
    new = ReferenceDB(tmp_path / "new.db", create=True)
    new.add_template(p0.name, p0 / "template.png")
    assert new.import_from(old) == {"added": 1, "templates": 0, "genuine_photos": 0}
    assert new.summary() == [(p0.name, "template", 1), ("tea", "genuine", 1)]
    assert ReferenceDB(old).templates() == [] and ReferenceDB(old).export(tmp_path / "o2.db") == 1
    with pytest.raises(RectifyError, match="no templates"):
        load_templates(old)


# -- one loader ------------------------------------------------------------------------------------------------
def test_load_templates_from_every_source(synth, tmp_path):
    p0, p1 = _products(synth)
    root = load_templates(synth)  # a dataset root: <product>/template.png
    assert root.products == [p0.name, p1.name] and len(root) == 2
    assert load_templates(synth, product=p1.name).products == [p1.name]

    folder = tmp_path / "iconic"  # catalogue images named after their products
    folder.mkdir()
    shutil.copy(p0 / "template.png", folder / "acme-tea.png")
    rgba = Image.open(p1 / "template.png").convert("RGBA")
    rgba.putalpha(255)
    rgba.save(folder / "acme-soap.png")  # decoded by load_photo like every photo: alpha composited
    (folder / "notes.txt").write_text("not an image")
    ts = load_templates(folder)
    assert ts.products == ["acme-soap", "acme-tea"]
    art = root.templates[0]
    _same(ts.templates[1], Template("acme-tea", art.image, art.keypoints, art.descriptors))

    single = load_templates(folder / "acme-tea.png")
    assert single.products == ["acme-tea"] and load_templates(folder / "acme-tea.png", "tea").products == ["tea"]

    db = ReferenceDB(tmp_path / "r.db", create=True)
    db.add_template("acme-tea", folder / "acme-tea.png")
    db.conn.close()
    _same(load_templates(tmp_path / "r.db").templates[0], single.templates[0])
    assert load_templates(tmp_path / "r.db", product="acme-tea").products == ["acme-tea"]

    photo = _photos(p0)[0]
    assert rectify(load_photo(photo), load_templates(tmp_path / "r.db")).product == "acme-tea"


def test_load_templates_says_what_is_wrong(synth, tmp_path):
    cases = {tmp_path / "missing": "no such file or folder"}
    (tmp_path / "empty").mkdir()
    cases[tmp_path / "empty"] = "no templates"
    (tmp_path / "notes.txt").write_text("hello")
    cases[tmp_path / "notes.txt"] = "neither an image nor a reference store"
    cases[_plain(tmp_path / "plain.png")] = "only 0 keypoints"
    (tmp_path / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")
    cases[tmp_path / "broken.jpg"] = "broken.jpg"
    ReferenceDB(tmp_path / "empty.db", create=True).conn.close()
    cases[tmp_path / "empty.db"] = "holds no templates"
    for path, message in cases.items():
        with pytest.raises(RectifyError, match=message) as e:
            load_templates(path)
        assert str(path) in str(e.value)
    with pytest.raises(RectifyError, match="has no template for 'nope'; it has: 00-"):
        load_templates(synth, product="nope")
    (tmp_path / "fake.db").write_bytes(b"SQLite format 3\x00" + b"\x00" * 200)
    with pytest.raises((ReferenceError, RectifyError), match="fake.db"):
        load_templates(tmp_path / "fake.db")


@pytest.mark.skipif(not (GROCERY / "iconic").is_dir(), reason="../shared/data/grocery-packages not present")
def test_load_templates_from_catalogue_images():
    ts = load_templates(GROCERY / "iconic")
    assert len(ts) == 31 and "Alpro-Fresh-Soy-Milk" in ts.products
    assert load_templates(GROCERY / "iconic", product="Oatly-Oat-Milk").products == ["Oatly-Oat-Milk"]


# -- templates from genuine photos -----------------------------------------------------------------------------
def test_template_from_photos_of_genuine_units(synth, tmp_path):
    (p0, p1) = _products(synth)
    genuine = _photos(p0)
    t0 = time.perf_counter()
    t, refused = template_from_photos(p0.name, [str(p) for p in genuine[:5]])
    seconds = time.perf_counter() - t0
    print(f"template from 5 photos at {SIZE} px: {seconds:.2f} s, {t.size[0]}x{t.size[1]}, {len(t.keypoints)} kp")
    assert refused == [] and t.product == p0.name
    # The package's face, not the photo: about the artwork's aspect, smaller than the photos.
    art = load_templates(p0 / "template.png").templates[0]
    assert abs(np.log((t.size[0] / t.size[1]) / (art.size[0] / art.size[1]))) < 0.35
    assert t.size[0] < SIZE and t.size[1] < SIZE * 3 / 4
    ts = TemplateSet([t])
    same = [rectify(load_photo(p), ts) for p in genuine[5:] + _photos(p0, "counterfeit")]
    assert np.mean([r.ok and r.product == p0.name for r in same]) >= 0.8
    other = [rectify(load_photo(p), ts) for p in _photos(p1) + _photos(p1, "counterfeit")]
    assert not any(r.ok for r in other)

    # Photos that are unreadable, blank or of another product are reported, not fatal.
    plain = np.full((240, 320, 3), 128, np.uint8)
    mixed = [b"not a photo", genuine[0], plain, genuine[1], _photos(p1)[0], Image.open(genuine[2])]
    t2, refused = template_from_photos(p0.name, mixed)
    assert [i for i, _ in refused] == [-1, 0, 2, 4] and "3 aligned photos" in refused[0][1]  # -1: a warning
    assert "keypoints" in refused[2][1] and "align" in refused[3][1]
    assert np.mean([rectify(load_photo(p), TemplateSet([t2])).product == p0.name for p in genuine[5:]]) >= 0.7


def test_template_from_photos_needs_one_usable_photo(synth):
    with pytest.raises(RectifyError, match="none of the 2 photo"):
        template_from_photos("x", [b"junk", np.full((64, 64, 3), 90, np.uint8)])
    t, refused = template_from_photos("x", [_photos(_products(synth)[0])[0]])  # one: the whole photo, said so
    assert refused[0][0] == -1 and "whole photo" in refused[0][1]


# -- the command line ------------------------------------------------------------------------------------------
def test_references_add_templates_cli(synth, tmp_path, capsys):
    p0, p1 = _products(synth)
    db = str(tmp_path / "refs.db")
    assert cli(["references", "add", "--db", db, "--product", "acme-tea", "--template", str(p0 / "template.png"),
                "--note", "print file"]) == 0
    out = capsys.readouterr().out
    assert "acme-tea: template added (artwork 304x" in out and "1 template(s) of acme-tea in" in out
    folder = tmp_path / "genuine-soap"
    folder.mkdir()
    for p in _photos(p1)[:5]:
        shutil.copy(p, folder)
    assert cli(["references", "add", "--db", db, "--product", "acme-soap", "--template-from-photos", str(folder)]) == 0
    assert "acme-soap: template added (photos" in capsys.readouterr().out
    assert cli(["references", "list", "--db", db]) == 0
    out = capsys.readouterr().out
    assert "acme-soap" in out and "template" in out and "artwork 304x" in out
    assert [r["kind"] for r in ReferenceDB(db).rows()] == ["photos", "artwork"]
    assert load_templates(db).products == ["acme-soap", "acme-tea"]

    plain = str(_plain(tmp_path / "plain.png"))
    fresh = tmp_path / "fresh.db"
    assert cli(["references", "add", "--db", str(fresh), "--product", "x", "--template", str(p0 / "template.png"),
                "--template", plain]) == 2
    assert "only 0 keypoints" in capsys.readouterr().err and not fresh.exists()  # nothing stored
    assert cli(["references", "add", "--db", db, "--product", "x"]) == 2
    assert "nothing to add" in capsys.readouterr().err
    assert cli(["references", "add", plain, "--db", db, "--product", "x", "--template", plain]) == 2
    assert "--template IMAGE" in capsys.readouterr().err
    assert cli(["references", "remove", "--db", db, "--product", "acme-tea"]) == 0
    assert ReferenceDB(db).summary() == [("acme-soap", "template", 1)]
