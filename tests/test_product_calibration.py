"""Issue 22: each product's own operating point from its genuine photos in the reference store. A comparator's
thresholds fitted on its validation data do not carry over to a product that looks nothing like it; a product with
at least 10 genuine photos in the store is judged by its own (held-out genuine scores, standardised against the
model's validation genuine scores), one with fewer that the model never trained on is not calibrated.
Small real computations: the tiny comparator of conftest and SynthPack photos at 320 px."""
from __future__ import annotations

import json

import numpy as np
import pytest

from genuine.cli import main as cli
from genuine.infer.product_calibration import (MIN_CALIBRATION_PHOTOS, PREDATES, ProductCalibrations, logit,
                                               standardised, stored_calibrations)
from genuine.infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT
from genuine.train.calibrate import operating_point, validation

VALIDATED = {"auroc": 0.97, "auroc_ci95": [0.93, 0.99], "genuine": 60, "counterfeit": 60, "items": 60,
             "counterfeit_items": 30, "bootstrap": 1000, "validated": True, "why": None}


def _edit_meta(src, dst, edit):
    import onnx

    m = onnx.load(str(src))
    prop = next(p for p in m.metadata_props if p.key == "genuine")
    meta = json.loads(prop.value)
    edit(meta)
    prop.value = json.dumps(meta)
    onnx.save(m, str(dst))
    return dst


def _global_thresholds(t_suspect: float) -> dict:
    """A validated operating point whose suspect threshold sits 3 genuine spreads above the validation genuine
    median: what a model calibrated on data unlike the product would carry."""
    return {"threshold_genuine": t_suspect / 2, "threshold_suspect": t_suspect, "validation": dict(VALIDATED),
            "genuine_logit": {"median": float(logit(t_suspect)) - 3.0, "scale": 1.0, "n": 60}}


def _store(path, ds, product, photos):
    from genuine.infer.references import ReferenceDB
    from genuine.infer.variation_store import add_genuine_photos

    db = ReferenceDB(path, create=True)
    db.add_template(product, str(ds.root / product / "template.png"))
    if photos:
        add_genuine_photos(db.conn, product, [str(p) for p in photos])
    return db


@pytest.fixture(scope="module")
def setting(comparator_run, tmp_path_factory):
    """The product the comparator never trained on, all its genuine photos in a store, and a copy of the model whose
    (validated) operating point calls every one of them SUSPECT."""
    from genuine.infer.inspector import Inspector
    from genuine.infer.variation_store import genuine_photo_count

    run, ds, new = comparator_run
    tmp = tmp_path_factory.mktemp("product_calibration")
    photos = sorted(r.path for r in ds.records if r.product == new and r.label == "genuine")
    db = _store(tmp / "refs.db", ds, new, photos)
    held = [str(p) for p in photos if db.conn.execute(
        "SELECT 1 FROM genuine_faces WHERE source = ?", (str(p),)).fetchone()]
    n = genuine_photo_count(db.conn, new)
    assert n >= MIN_CALIBRATION_PHOTOS + 1, f"only {n} genuine photos of {new} rectified"
    plain = Inspector(run / "model.onnx", templates=str(db.path), calibrate_products=False)
    p = np.array([plain.inspect(h).p_counterfeit for h in held], float)
    assert np.isfinite(p).all()
    t_suspect = float(p.min()) * 0.999

    def edit(meta):
        meta["thresholds"] = _global_thresholds(t_suspect)
        meta["fusion"] = {"used": False, "why": "test"}
    model = _edit_meta(run / "model.onnx", tmp / "global.onnx", edit)
    return {"run": run, "ds": ds, "new": new, "tmp": tmp, "db": db.path, "photos": photos, "held": held,
            "model": model, "p": p}


def test_a_product_unlike_the_training_data_is_judged_by_its_own_genuine_photos(setting):
    from genuine.infer.inspector import Inspector

    new, held = setting["new"], setting["held"]
    off = Inspector(setting["model"], templates=str(setting["db"]), calibrate_products=False)
    before = [off.inspect(h) for h in held]
    # the global operating point: every genuine unit of this product is SUSPECT (the lever below is what changes it)
    assert {r.verdict for r in before} == {SUSPECT}
    assert all(r.evidence["thresholds"]["source"] == "model" for r in before)
    insp = Inspector(setting["model"], templates=str(setting["db"]))
    after = [insp.inspect(h) for h in held]
    assert not any(r.verdict == SUSPECT for r in after), [(r.p_counterfeit, r.reason) for r in after]
    assert any(r.verdict == GENUINE for r in after)
    th = after[0].evidence["thresholds"]
    cal = th["calibration"]
    assert th["source"] == "product" and cal["photos"] == len(held) and cal["folds"] == 5
    assert cal["scores"] == "comparator" and cal["held_out_genuine"]["SUSPECT"] == 0.0
    assert cal["validated"] and cal["model_validation"]["validated"] and cal["model_sha256"] == insp.model.sha256
    assert "carries over" in cal["method"] and cal["threshold_genuine"] < cal["threshold_suspect"]
    assert th["threshold_suspect"] > max(r.p_counterfeit for r in before)
    assert all(f"this product's operating point from its {len(held)} genuine photos" in r.reason for r in after)
    assert insp.judge.calibrations.computed == 1   # one product, one calibration, however many photos


def test_too_few_genuine_photos_of_a_new_product_is_not_calibrated_never_suspect(setting, tmp_path, capsys):
    from genuine.infer.inspector import Inspector

    ds, new, photos = setting["ds"], setting["new"], setting["photos"]
    db = _store(tmp_path / "few.db", ds, new, photos[:6])
    n = db.conn.execute("SELECT COUNT(*) FROM genuine_faces").fetchone()[0]
    assert 0 < n < MIN_CALIBRATION_PHOTOS
    insp = Inspector(setting["model"], templates=str(db.path))
    results = [insp.inspect(h) for h in setting["held"]]
    scored = [r for r in results if r.p_counterfeit is not None]
    assert scored and not any(r.verdict == SUSPECT for r in results)
    for r in scored:
        assert r.verdict == INCONCLUSIVE and r.evidence["thresholds"]["calibration"] is None
        assert (f"{new} is not calibrated for this model: {n} genuine photos in the reference store, "
                f"{MIN_CALIBRATION_PHOTOS} needed (genuine references add") in r.reason
    # a product the model was trained on keeps the model's own operating point with fewer photos
    trained = ds.products[0]
    db.add_template(trained, str(ds.root / trained / "template.png"))
    photo = next(r.path for r in ds.records if r.product == trained and r.label == "genuine")
    r = insp.inspect(photo)
    if r.p_counterfeit is not None:
        assert r.evidence["thresholds"]["source"] == "model" and "not calibrated" not in r.reason
    # references list says how many more photos it needs
    capsys.readouterr()
    assert cli(["references", "list", "--db", str(db.path), "--product", new]) == 0
    assert f"not calibrated: {n} of {MIN_CALIBRATION_PHOTOS} genuine photos" in capsys.readouterr().out


def test_the_calibration_is_cached_and_follows_the_photos(setting, tmp_path, capsys):
    import shutil

    from genuine.infer.inspector import Inspector
    from genuine.infer.references import ReferenceDB
    from genuine.infer.variation_store import add_genuine_photos

    ds, new, held = setting["ds"], setting["new"], setting["held"]
    db = _store(tmp_path / "c.db", ds, new, held[:-1])
    first = Inspector(setting["model"], templates=str(db.path))
    r1 = first.inspect(held[0])
    assert first.judge.calibrations.computed == 1
    second = Inspector(setting["model"], templates=str(db.path))
    r2 = second.inspect(held[1])
    assert second.judge.calibrations.computed == 0                      # read from the store, not recomputed
    assert r2.evidence["thresholds"]["calibration"] == r1.evidence["thresholds"]["calibration"]
    (row,) = stored_calibrations(db.conn)
    assert row["current"] and row["product"] == new and row["model_sha256"] == first.model.sha256
    # references list shows the model's thresholds and n
    assert cli(["references", "list", "--db", str(db.path)]) == 0
    out = capsys.readouterr().out
    assert f"model {first.model.sha256[:16]}" in out and f"n={len(held) - 1} genuine photos" in out
    # a photo added: the faces changed, the cached row is stale and the next inspection recomputes
    add_genuine_photos(ReferenceDB(db.path).conn, new, [held[-1]])
    assert not stored_calibrations(db.conn)[0]["current"]
    third = Inspector(setting["model"], templates=str(db.path))
    r3 = third.inspect(held[0])
    assert third.judge.calibrations.computed == 1 and r3.evidence["thresholds"]["calibration"]["photos"] == len(held)
    assert stored_calibrations(db.conn)[0]["current"]
    # the running inspector sees the new photo too (the store changed under it)
    assert first.inspect(held[0]).evidence["thresholds"]["calibration"]["photos"] == len(held)
    # a read-only store computes it again rather than failing
    import sqlite3

    ro = tmp_path / "ro.db"
    db.conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
    shutil.copy(db.path, ro)
    conn = sqlite3.connect(f"file:{ro}?mode=ro", uri=True)
    cals = ProductCalibrations(conn, third.model)
    third_t = next(t for t in third.templates.templates if t.product == new)
    cals.groups[(new, third_t.key)] = cals.groups[(new, third_t.key)][1:]   # faces changed: the cache is stale
    cal = cals.get(new, third_t.key, third.judge.template_input(third_t))
    assert cals.computed == 1 and cal["photos"] == len(held)


def test_a_model_made_before_per_product_calibration_keeps_its_thresholds(setting, tmp_path):
    from genuine.infer.inspector import Inspector

    def edit(meta):
        meta["thresholds"].pop("genuine_logit")
    old = _edit_meta(setting["model"], tmp_path / "old.onnx", edit)
    r = Inspector(old, templates=str(setting["db"])).inspect(setting["held"][0])
    th = r.evidence["thresholds"]
    assert th["source"] == "model" and th["calibration"] is None and th["note"] == PREDATES
    assert r.verdict == SUSPECT and "not calibrated" not in r.reason


def test_held_out_scores_are_cross_fitted_when_the_model_fuses(setting, tmp_path):
    """With a fusion, every face's variation score comes from a model fitted without it, and the product's
    thresholds are standardised against the fusion's operating point."""
    from genuine.infer.inspector import Inspector
    from genuine.infer.product_calibration import held_out_scores
    from genuine.infer.variation import fit, score
    from genuine.infer.variation_store import stored_faces

    def edit(meta):
        th = _global_thresholds(0.6)
        meta["fusion"] = {"used": True, "coef": [1.0, 0.8], "intercept": -0.5, "thresholds": th}
    fused = _edit_meta(setting["model"], tmp_path / "fused.onnx", edit)
    insp = Inspector(fused, templates=str(setting["db"]))
    r = insp.inspect(setting["held"][0])
    cal = r.evidence["thresholds"]["calibration"]
    assert r.evidence["fused"] and cal["scores"] == "fused" and r.evidence["thresholds"]["source"] == "product"
    t = next(t for t in insp.templates.templates if t.product == setting["new"])
    faces = stored_faces(insp.judge.store.conn, setting["new"], t.key, insp.model.face_size)
    h = held_out_scores(faces, insp.judge.template_input(t), insp.model, insp.fusion)
    assert h["fused"] and h["folds"] == 5 and len(h["p"]) == len(faces)
    test = np.arange(len(faces)) % 5 == 0        # the first fold: scored by a model fitted on the other four only
    assert np.allclose(h["variation_score"][test], score(fit(faces[~test]), faces[test]))
    assert not np.allclose(h["variation_score"], score(fit(faces), faces))   # not by one fitted on itself
    assert abs(cal["held_out_p"]["max"] - float(h["p"].max())) < 1e-9


def test_standardisation_maps_the_models_thresholds_into_the_products_genuine_spread():
    rng = np.random.default_rng(0)
    th = {"threshold_genuine": 0.2, "threshold_suspect": 0.6,
          "genuine_logit": {"median": float(logit(0.05)), "scale": 0.5, "n": 100}}
    z = rng.normal(2.0, 0.5, 400)                          # a product far above the model's genuine photos
    p = 1 / (1 + np.exp(-z))
    st = standardised(p, th)
    # the suspect threshold sits as many genuine spreads above the product's median as the model's sat above its own
    k = (float(logit(0.6)) - float(logit(0.05))) / 0.5
    want = st["median_logit"] + k * st["scale_logit"]
    assert abs(float(logit(st["standardised"]["threshold_suspect"])) - want) < 1e-9
    assert abs(st["median_logit"] - 2.0) < 0.1 and abs(st["scale_logit"] - 0.5) < 0.05
    assert st["threshold_genuine"] < st["threshold_suspect"] and st["threshold_suspect"] > p.max()
    # ten photos: the spread is shrunk toward the model's, and no photo of the ten is SUSPECT
    few = p[:10]
    st10 = standardised(few, {**th, "genuine_logit": {**th["genuine_logit"], "scale": 2.0}})
    assert st10["scale_logit_photos"] < st10["scale_logit"] < 2.0 and st10["threshold_suspect"] > few.max()
    with pytest.raises(ValueError, match="predates"):
        standardised(p, {"threshold_genuine": 0.2, "threshold_suspect": 0.6})


def test_operating_point_records_where_genuine_photos_lie_in_logit_space():
    y = np.repeat([0, 1], 40)
    p = np.where(y == 1, np.linspace(0.7, 0.95, 80), np.linspace(0.05, 0.3, 80))
    op = operating_point(p, y)
    g = op["genuine_logit"]
    z = logit(p[y == 0])
    assert g["n"] == 40 and abs(g["median"] - np.median(z)) < 1e-12
    assert abs(g["scale"] - 1.4826 * np.median(np.abs(z - np.median(z)))) < 1e-12
    # clipped, never infinite
    g = operating_point(np.r_[np.zeros(20), np.ones(20)], np.repeat([0, 1], 20))["genuine_logit"]
    assert np.isfinite(g["median"]) and g["scale"] > 0


def test_a_brands_small_validation_set_five_counterfeits_of_three_items():
    g = np.linspace(0.05, 0.3, 12)
    y5, y4 = np.r_[np.zeros(12), np.ones(5)].astype(int), np.r_[np.zeros(12), np.ones(4)].astype(int)
    items5 = [f"g{i}" for i in range(12)] + ["c0", "c0", "c1", "c1", "c2"]
    v = validation(np.r_[g, np.linspace(0.7, 0.9, 5)], y5, groups=items5)
    assert v["validated"] and v["counterfeit"] == 5 and v["counterfeit_items"] == 3 and v["why"] is None
    v = validation(np.r_[g, np.linspace(0.7, 0.9, 4)], y4, groups=items5[:12] + ["c0", "c0", "c1", "c2"])
    assert not v["validated"] and "only 4 counterfeit photos of 3 counterfeit items" in v["why"]
    two_items = [f"g{i}" for i in range(12)] + ["c0", "c0", "c0", "c1", "c1"]
    v = validation(np.r_[g, np.linspace(0.7, 0.9, 5)], y5, groups=two_items)
    assert not v["validated"] and "of 2 counterfeit items" in v["why"] and "3 items" in v["why"]
    v = validation(np.r_[g[:9], np.linspace(0.7, 0.9, 5)], np.r_[np.zeros(9), np.ones(5)].astype(int))
    assert not v["validated"] and "only 9 genuine photos" in v["why"]


def test_a_scan_reports_each_products_operating_point(setting, tmp_path):
    new, held = setting["new"], setting["held"]
    out = tmp_path / "scan"
    assert cli(["scan", str(setting["model"]), *held[:4], "--templates", str(setting["db"]), "--out", str(out),
                "--workers", "1"]) == 0
    recs = [json.loads(line) for line in open(out / "results.jsonl")]
    assert all(r["evidence"]["thresholds"]["source"] == "product" and r["verdict"] != SUSPECT for r in recs)
    summary = json.loads((out / "summary.json").read_text())
    th = summary["product_calibrations"][new]
    assert th["source"] == "product" and th["calibration"]["photos"] == len(held)
    page = (out / "report.html").read_text()
    assert "Operating point per product" in page and "its own genuine photos" in page


def test_a_trained_product_keeps_the_models_validated_operating_point(setting, tmp_path):
    """The model's validation held out the trained products' genuine photos and their counterfeits: stronger evidence
    than genuine photos alone, so even with 10+ genuine photos in the store a trained product keeps it."""
    from genuine.infer.inspector import Inspector

    ds = setting["ds"]
    trained = ds.products[0]
    photos = sorted(r.path for r in ds.records if r.product == trained and r.label == "genuine")
    db = _store(tmp_path / "trained.db", ds, trained, photos)
    assert db.conn.execute("SELECT COUNT(*) FROM genuine_faces").fetchone()[0] >= MIN_CALIBRATION_PHOTOS
    insp = Inspector(setting["model"], templates=str(db.path))
    scored = [r for r in (insp.inspect(p) for p in photos[:4]) if r.p_counterfeit is not None]
    assert scored and all(r.evidence["thresholds"]["source"] == "model" for r in scored)
    assert insp.judge.calibrations.computed == 0
