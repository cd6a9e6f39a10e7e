"""The comparator fused with each product's genuine variation: the fit on val, the store's genuine photos, and the
inspector, scan and evaluate using them. Small real computations: synthetic scores, SynthPack photos at 320 px."""
from __future__ import annotations

import csv
import json

import numpy as np
import pytest

from genuine.cli import main as cli
from genuine.infer.variation import MIN_PHOTOS, fit, from_bytes, fused_p, score, to_bytes
from genuine.train.variation_fusion import fit_fusion


def _scores(n=200, seed=0, informative=True):
    rng = np.random.default_rng(seed)
    y = rng.integers(0, 2, n)
    p = 1 / (1 + np.exp(-(rng.normal(0, 1, n) + 1.0 * y)))          # a weak comparator
    s = rng.normal(0, 1, n) + (2.0 * y if informative else -1.0 * y)   # a variation score
    return p, s, y


def test_the_fusion_fitted_on_val_beats_either_score_alone():
    from sklearn.metrics import roc_auc_score

    p, s, y = _scores()
    f = fit_fusion(p, s, y, max_fpr=0.05, max_miss=0.1)
    assert f["used"] and f["coef"][1] > 0 and f["coef"][0] > 0
    v = f["val"]
    assert v["auroc"] > max(v["comparator_auroc"], v["variation_auroc"])
    assert abs(v["auroc"] - roc_auc_score(y, fused_p(p, s, f))) < 1e-9
    th = f["thresholds"]
    assert 0 <= th["threshold_genuine"] <= th["threshold_suspect"] <= 1
    # a fresh sample from the same process: the fitted weights carry over
    p2, s2, y2 = _scores(seed=1)
    assert roc_auc_score(y2, fused_p(p2, s2, f)) > roc_auc_score(y2, p2) + 0.05


def test_no_fusion_when_val_cannot_support_it_or_the_score_points_the_wrong_way():
    p, s, y = _scores(informative=False)
    f = fit_fusion(p, s, y, 0.01, 0.05)
    assert not f["used"] and "does not separate" in f["why"]
    p, s, y = _scores(n=10)
    assert not fit_fusion(p, s, y, 0.01, 0.05)["used"]
    s = np.full(200, np.nan)           # no product with genuine train photos
    p, _, y = _scores()
    f = fit_fusion(p, s, y, 0.01, 0.05)
    assert not f["used"] and "0 val photos" in f["why"]


def test_fused_p_rises_with_either_score_and_clips_a_broken_one():
    f = {"coef": [1.0, 0.5], "intercept": -0.2}
    assert fused_p(0.3, 0.0, f) < fused_p(0.6, 0.0, f) and fused_p(0.3, 0.0, f) < fused_p(0.3, 2.0, f)
    assert np.isfinite(fused_p(0.5, 1e300, f)) and fused_p(0.5, 1e300, f) == fused_p(0.5, 1e6, f)
    out = fused_p(np.array([0.1, 0.9]), np.array([0.0, 0.0]), f)
    assert out.shape == (2,) and out[0] < out[1]


def test_a_variation_model_survives_the_store_round_trip():
    rng = np.random.default_rng(0)
    base = rng.integers(0, 255, (64, 96, 3)).astype(np.float32)
    faces = np.stack([np.clip(base + rng.normal(0, 4, base.shape), 0, 255) for _ in range(6)]).astype(np.uint8)
    m = fit(faces)
    m2 = from_bytes(to_bytes(m))
    assert np.array_equal(m.median, m2.median) and np.array_equal(m.spread, m2.spread)
    assert (m.centre, m.scale, m.n) == (m2.centre, m2.scale, m2.n)
    odd = faces[:1].copy()
    odd[0, 20:40, 30:60] = 255 - odd[0, 20:40, 30:60]          # a patch unlike any genuine face
    assert score(m2, odd)[0] > score(m2, faces[1:2])[0] + 3


@pytest.fixture(scope="module")
def store(synth320, tmp_path_factory):
    """A reference store with product 0's template and MIN_PHOTOS + 1 of its genuine train photos."""
    from genuine.infer.references import ReferenceDB
    from genuine.train.layout import discover

    ds = discover(synth320)
    product = ds.products[0]
    db = tmp_path_factory.mktemp("variation") / "refs.db"
    ReferenceDB(db, create=True).add_template(product, str(ds.root / product / "template.png"))
    photos = [r.path for r in ds.records if r.product == product and r.label == "genuine" and r.split == "train"]
    return ds, product, db, photos


def test_genuine_photos_join_the_store_and_give_a_cached_model(store, capsys):
    from genuine.infer.references import ReferenceDB
    from genuine.infer.variation_store import genuine_photo_count, variation_models

    ds, product, db, photos = store
    other = next(r.path for r in ds.records if r.product != product)
    code = cli(["references", "add", "--db", str(db), "--product", product, "--genuine-photos",
                *map(str, photos), str(other)])
    out, err = capsys.readouterr()
    conn = ReferenceDB(db).conn
    n = genuine_photo_count(conn, product)
    assert code == 3 and n >= MIN_PHOTOS and f"{n} in {db}" in out      # 3: one photo was skipped, named
    assert f"{other.name}: not aligned to {product}" in err or str(other) in err
    assert cli(["references", "add", "--db", str(db), "--product", product, "--genuine-photos", str(photos[0])]) == 0
    assert "1 already present" in capsys.readouterr().out
    models = variation_models(conn, (96, 64))
    (key, m), = models.items()
    assert key[0] == product and m.median.shape == (64, 96, 3) and m.n == n
    cached = conn.execute("SELECT COUNT(*) FROM variation_models").fetchone()[0]
    again = variation_models(conn, (96, 64))[key]
    assert cached == 1 and np.array_equal(again.spread, m.spread)
    # a product without a template: told to add one first
    assert cli(["references", "add", "--db", str(db), "--product", "nope", "--genuine-photos", str(photos[0])]) == 2
    assert "no template" in capsys.readouterr().err


def _clean_quality():
    from genuine.infer.quality import Quality

    return Quality(sharpness=100.0, brightness=0.5, clipped=0.0, width=96, height=64, issues=[])


def _with_fusion(src, dst):
    """A copy of an exported comparator whose metadata carries a fusion (the tiny run's val is too small to fit
    one): the runtime must use whatever fusion the file holds."""
    import onnx

    m = onnx.load(str(src))
    prop = next(p for p in m.metadata_props if p.key == "genuine")
    meta = json.loads(prop.value)
    meta["fusion"] = {"used": True, "coef": [1.0, 0.8], "intercept": -0.5,
                      "thresholds": {"threshold_genuine": 0.2, "threshold_suspect": 0.8}}
    prop.value = json.dumps(meta)
    onnx.save(m, str(dst))
    return meta["fusion"]


def test_inspector_scan_and_evaluate_fuse_where_genuine_photos_exist(comparator_run, store, tmp_path, capsys):
    from genuine.infer.inspector import Inspector

    run, _, _ = comparator_run
    ds, product, db, photos = store
    fusion = _with_fusion(run / "model.onnx", tmp_path / "fused.onnx")
    test = [r.path for r in ds.records if r.product == product and r.split == "test"]
    insp = Inspector(tmp_path / "fused.onnx", templates=str(db))
    results = [insp.inspect(p) for p in test]
    scored = [r for r in results if r.p_counterfeit is not None]
    assert scored, "no test photo rectified"
    for r in scored:
        e = r.evidence
        assert e["fused"] and e["variation_score"] is not None
        assert abs(r.p_counterfeit - fused_p(e["comparator_p"], e["variation_score"], fusion)) < 1e-5
        assert r.verdict == "INCONCLUSIVE" or "genuine photos" in r.reason
    # where the variation evidence outweighs the comparator's, the region named and drawn is the variation's
    heat = np.zeros((16, 24), np.float32)
    heat[0, 0] = 1.0                                   # the comparator points at the upper left ...
    vmap = np.zeros((16, 24), np.float32)
    vmap[15, 23] = 9.0                                 # ... the genuine variation, decisively, at the lower right
    r = insp.judge.verdict({"p_counterfeit": 0.5, "heatmap": heat, "variation": (10.0, vmap)}, _clean_quality(),
                        scored[0].rectification, "x")
    assert r.verdict == "SUSPECT" and r.evidence["strongest"] == "variation" and "lower right" in r.reason
    assert np.array_equal(r.heatmap, vmap)
    r = insp.judge.verdict({"p_counterfeit": 0.999, "heatmap": heat, "variation": (0.1, vmap)}, _clean_quality(),
                        scored[0].rectification, "x")
    assert r.evidence["strongest"] == "comparator" and "upper left" in r.reason
    # the same store without genuine photos: the comparator alone, and the reason says what would add evidence
    from genuine.infer.references import ReferenceDB

    bare = tmp_path / "bare.db"
    ReferenceDB(bare, create=True).add_template(product, str(ds.root / product / "template.png"))
    r = Inspector(tmp_path / "fused.onnx", templates=str(bare)).inspect(scored[0].source)
    assert not r.evidence["fused"] and r.p_counterfeit == r.evidence["comparator_p"]
    assert "--genuine-photos" in r.reason
    # scan: fused the same way (its workers rectify with one OpenCV thread, so the face may differ by a hair)
    out = tmp_path / "scan"
    assert cli(["scan", str(tmp_path / "fused.onnx"), *map(str, test), "--templates", str(db), "--out", str(out),
                "--workers", "1"]) in (0, 1)
    recs = {r["path"]: r for r in map(json.loads, open(out / "results.jsonl")) if r.get("type") == "photo"}
    rows = {row["path"]: row for row in csv.DictReader(open(out / "results.csv"))}
    assert all(rows[r.source]["fused"] == "True" and rows[r.source]["variation_score"] for r in scored)
    for r in scored:
        e = recs[r.source]["evidence"]
        assert e["fused"] and abs(e["variation_score"] - r.evidence["variation_score"]) < 0.25
        assert abs(recs[r.source]["p_counterfeit"] - fused_p(e["comparator_p"], e["variation_score"], fusion)) < 1e-5
    # evaluate: each product's variation from the dataset's genuine train photos, both numbers reported
    assert cli(["evaluate", str(tmp_path / "fused.onnx"), str(ds.root), "--out", str(tmp_path / "ev")]) == 0
    rep = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert rep["fusion"]["used"] and rep["fusion"]["photos_fused"] > 0 and "auroc" in rep["fusion"]["comparator_only"]


def test_a_dataset_fills_a_store_with_templates_and_only_its_train_genuine_photos(synth320, tmp_path, capsys):
    from genuine.infer.references import ReferenceDB
    from genuine.train.layout import discover

    ds = discover(synth320)
    db = tmp_path / "refs.db"
    assert cli(["data", "references", str(ds.root), "--db", str(db)]) == 0
    out = capsys.readouterr().out
    assert "Results saved to" in out and "Next: genuine scan" in out
    conn = ReferenceDB(db).conn
    train = {r.path.name for r in ds.records if r.label == "genuine" and r.split == "train"}
    stored = {row[0].rsplit("/", 1)[-1] for row in conn.execute("SELECT source FROM genuine_faces")}
    assert stored and stored <= train            # no val or test photo, no counterfeit
    assert {p for p, in conn.execute("SELECT DISTINCT product FROM templates")} == set(ds.products)
    n = conn.execute("SELECT COUNT(*) FROM genuine_faces").fetchone()[0]
    assert cli(["data", "references", str(ds.root), "--db", str(db)]) == 0     # a rerun adds nothing
    assert "0 genuine photo(s) added" in capsys.readouterr().out
    assert conn.execute("SELECT COUNT(*) FROM genuine_faces").fetchone()[0] == n
    assert cli(["data", "references", str(ds.root), "--db", str(db), "--products", "nope"]) == 2
    assert "nope" in capsys.readouterr().err


def test_genuine_photos_travel_with_export_and_import(store, tmp_path, capsys):
    from genuine.infer.references import ReferenceDB
    from genuine.infer.variation_store import add_genuine_photos, genuine_photo_count

    ds, product, _, photos = store
    a = ReferenceDB(tmp_path / "a.db", create=True)
    a.add_template(product, str(ds.root / product / "template.png"))
    n = add_genuine_photos(a.conn, product, [str(p) for p in photos[:6]])["photos"]
    assert n >= 5
    assert cli(["references", "export", str(tmp_path / "share.db"), "--db", str(tmp_path / "a.db")]) == 0
    assert cli(["references", "import", str(tmp_path / "share.db"), "--db", str(tmp_path / "b.db")]) == 0
    assert f"{n} new genuine photo(s)" in capsys.readouterr().out
    b = ReferenceDB(tmp_path / "b.db")
    assert genuine_photo_count(b.conn, product) == n and b.template_count(product) == 1
    assert cli(["references", "import", str(tmp_path / "share.db"), "--db", str(tmp_path / "b.db")]) == 0
    assert "0 new genuine photo(s)" in capsys.readouterr().out                   # nothing twice
    assert ReferenceDB(tmp_path / "b.db").remove(product) >= n + 1               # photos go with the product
    assert genuine_photo_count(ReferenceDB(tmp_path / "b.db").conn) == 0


def test_variation_models_in_memory_are_bounded(store, monkeypatch):
    import genuine.infer.variation_store as vs
    from genuine.infer.references import ReferenceDB

    ds, product, db, photos = store
    conn = ReferenceDB(db).conn
    if vs.genuine_photo_count(conn, product) < MIN_PHOTOS:
        vs.add_genuine_photos(conn, product, [str(p) for p in photos])
    vm = vs.VariationModels(conn, (96, 64))
    (key,) = vm.groups
    vm.groups[("other", "t")] = vm.groups[key]          # a second product with the same photos
    monkeypatch.setattr(vs, "MAX_IN_MEMORY", 1)
    blank = vs.to_bytes(vs.fit(np.zeros((5, 64, 96, 3), np.uint8)))
    monkeypatch.setattr(vm, "_load", lambda p, t: vs.from_bytes(blank))   # a fresh object per load
    a = vm.get(key)
    assert vm.get(key) is a                              # held while it is the most recent
    vm.get(("other", "t"))
    assert list(vm._models) == [("other", "t")]          # the least recently used left memory


def test_a_ray_scan_fuses_like_the_local_scan(comparator_run, store, tmp_path):
    """The comparator with a store of genuine photos on --engine ray: actors open the store in one thread and read it
    from another (once a crash here), and the rows equal the local scan's."""
    pytest.importorskip("ray.data")
    run, _, _ = comparator_run
    ds, product, db, photos = store
    cli(["references", "add", "--db", str(db), "--product", product, "--genuine-photos", *map(str, photos)])
    _with_fusion(run / "model.onnx", tmp_path / "fused.onnx")
    test = [str(r.path) for r in ds.records if r.product == product and r.split == "test"]
    common = [str(tmp_path / "fused.onnx"), *test, "--templates", str(db), "--workers", "1"]
    assert cli(["scan", *common, "--out", str(tmp_path / "local")]) in (0, 1)
    assert cli(["scan", *common, "--out", str(tmp_path / "ray"), "--engine", "ray", "--actors", "1"]) in (0, 1)
    local, ray = (sorted(csv.DictReader(open(tmp_path / d / "results.csv")), key=lambda r: r["path"])
                  for d in ("local", "ray"))
    assert local == ray and all(r["verdict"] != "ERROR" for r in ray)
    assert any(r["fused"] == "True" for r in ray)
