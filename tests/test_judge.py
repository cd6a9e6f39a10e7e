"""Issue 23: one step from an aligned face to its verdict (infer/judge.py), shared by inspect and scans, and faces
that name their template by key. Small real computations: the tiny comparator of conftest, SynthPack at 320 px."""
from __future__ import annotations

import numpy as np
import pytest

from genuine.infer.inspector import ComparatorInspector, Inspector
from genuine.infer.judge import TemplateMissing
from genuine.infer.scan_batch import listing, score_batch
from genuine.infer.scan_worker import WorkerSetup, decode


@pytest.fixture()
def store(comparator_run, tmp_path):
    """A store holding one product's template, named so that a product added later sorts before it."""
    from genuine.infer.references import ReferenceDB

    run, ds, _ = comparator_run
    db = ReferenceDB(tmp_path / "refs.db", create=True)
    db.add_template("m-product", str(ds.root / ds.products[0] / "template.png"))
    photo = next(r.path for r in ds.records if r.product == ds.products[0] and r.split == "test")
    return run / "model.onnx", db, ds, photo


def test_inspect_and_a_scan_give_one_answer(store):
    """The inspector (a batch of one) and a scan's worker + batch path are one face -> verdict step."""
    model, db, _, photo = store
    insp = Inspector(model, templates=str(db.path))
    assert isinstance(insp, ComparatorInspector)
    one = insp.inspect(photo)
    WorkerSetup.of(insp).start()
    [(rec, _)] = score_batch(insp, [decode(e) for e in listing([str(photo)])])
    assert one.rectification["ok"] and rec["verdict"] == one.verdict and rec["reason"] == one.reason
    assert rec["p_counterfeit"] == one.p_counterfeit and rec["evidence"] == one.evidence


def test_a_face_is_judged_against_its_own_template_when_the_store_changes_mid_scan(store):
    """A worker aligns a face to a template; a trainer then adds a product that sorts first, so the judge's list of
    templates shifts by one. The face names its template by key: it is still compared with its own (by list
    position it would be compared with the new product's)."""
    model, db, ds, photo = store
    insp = Inspector(model, templates=str(db.path))
    WorkerSetup.of(insp).start()
    [item] = [decode(e) for e in listing([str(photo)])]
    own = insp.judge.template(item.face.template)
    db.add_template("a-newcomer", str(ds.root / ds.products[1] / "template.png"))   # positions shift
    [(rec, _)] = score_batch(insp, [item])
    listed = [t for t in insp.judge.templates.templates if not t.view]
    assert [t.product for t in listed] == ["a-newcomer", "m-product"]   # the judge re-read the store
    assert rec["product"] == "m-product"
    x = item.face.x[None]
    p_own = float(insp.model.compare(x, insp.judge.template_input(own)[None])["p_counterfeit"][0])
    p_new = float(insp.model.compare(x, insp.judge.template_input(listed[0])[None])["p_counterfeit"][0])
    assert abs(p_own - p_new) > 1e-4                       # the two templates give different answers ...
    assert rec["evidence"]["comparator_p"] == pytest.approx(p_own, abs=1e-6)   # ... and the face got its own


def test_a_face_whose_template_left_the_store_is_not_compared_with_another(store):
    model, db, _, photo = store
    insp = Inspector(model, templates=str(db.path))
    WorkerSetup.of(insp).start()
    [item] = [decode(e) for e in listing([str(photo)])]
    item.face.template = "0" * 16                          # a template the judge has never held
    with pytest.raises(TemplateMissing):
        insp.judge.template(item.face.template)
    [(rec, _)] = score_batch(insp, [item])
    assert rec["verdict"] == "INCONCLUSIVE" and rec["p_counterfeit"] is None and "removed" in rec["reason"]


def test_score_faces_batches_like_one_at_a_time(store):
    """A batch of faces gets the results each face gets alone (the model runs once per batch)."""
    model, db, ds, _ = store
    insp = Inspector(model, templates=str(db.path))
    WorkerSetup.of(insp).start()
    photos = [str(r.path) for r in ds.records if r.product == ds.products[0] and r.split == "test"][:4]
    faces = [i.face for i in (decode(e) for e in listing(photos)) if i.face is not None]
    assert len(faces) >= 2
    together = insp.judge.score_faces(faces)
    alone = [insp.judge.score_faces([f])[0] for f in faces]
    assert [r.verdict for r in together] == [r.verdict for r in alone]
    assert np.allclose([r.p_counterfeit for r in together], [r.p_counterfeit for r in alone], atol=1e-5)


def test_the_exported_contract_records_the_face_side_faces_are_warped_at(store):
    """meta["input"]["rectify"]["face_side"] is what rectify_photo really warps at for this model, not a default."""
    from genuine.infer.contract import is_comparator
    from genuine.infer.rectify import model_face_side
    from genuine.infer.runtime import OnnxModel

    m = OnnxModel(store[0])
    assert is_comparator(m.meta)
    assert m.meta["input"]["rectify"]["face_side"] == model_face_side(m.face_size) == 2 * max(m.face_size)


def test_the_officer_names_the_declared_product_and_a_look_alike_no_longer_hides_it(store, tmp_path, capsys):
    """Two products whose artwork is the same but for one pixel: the photo is refused as ambiguous; with
    --product (the declared goods) only that product's template is matched and the photo is inspected."""
    import json

    from PIL import Image

    from genuine.cli import main as cli

    model, db, ds, photo = store
    art = np.asarray(Image.open(ds.root / ds.products[0] / "template.png").convert("RGB")).copy()
    art[0, 0] = 255 - art[0, 0]                            # another file, the same print
    Image.fromarray(art).save(tmp_path / "look-alike.png")
    db.add_template("z-look-alike", str(tmp_path / "look-alike.png"))
    args = ["inspect", str(model), str(photo), "--templates", str(db.path), "--json"]
    cli(args)
    plain = json.loads(capsys.readouterr().out)
    assert plain["rectification"]["reason_code"] == "ambiguous" and plain["p_counterfeit"] is None
    cli(args + ["--product", "m-product"])
    named = json.loads(capsys.readouterr().out)
    assert named["rectification"]["ok"] and named["product"] == "m-product" and named["p_counterfeit"] is not None
    assert cli(args + ["--product", "nothing-like-it"]) == 2 and "known: m-product, z-look-alike" in capsys.readouterr().err


def test_scan_workers_check_learnt_zones_and_leave_the_rest_to_the_judge(store, tmp_path, monkeypatch):
    """A store's template learnt its zones when added: workers check them and send no sharp face. Templates read
    from files have none yet: the worker sends the sharp face and the judge learns the zones once, in the main
    process (a scan never learns a whole store's up front)."""
    model, db, ds, photo = store
    insp = Inspector(model, templates=str(db.path))
    setup = WorkerSetup.of(insp)
    assert list(setup.zones) == [t.key for t in insp.judge.templates.templates if not t.view]
    setup.start()
    [item] = [decode(e) for e in listing([str(photo)])]
    assert item.face.findings is not None and item.face.sharp is None
    [(rec, _)] = score_batch(insp, [item])
    assert {f["zone"] for f in rec["evidence"]["zones"]["findings"]} >= {"colour"}

    monkeypatch.setenv("GENUINE_CACHE", str(tmp_path / "cache"))      # template files whose zones nobody learnt
    insp = Inspector(model, templates=str(ds.root))
    setup = WorkerSetup.of(insp)
    assert setup.zones == {}
    setup.start()
    [item] = [decode(e) for e in listing([str(photo)])]
    assert item.face.findings is None and item.face.sharp is not None
    [(rec2, _)] = score_batch(insp, [item])
    assert rec2["evidence"]["zones"]["findings"] == rec["evidence"]["zones"]["findings"]
    assert list((tmp_path / "cache" / "zones").glob("*.json"))          # learnt once, kept for the next run
