"""The comparator path end to end on tiny data: train -> export -> evaluate the ONNX file -> inspect, scan and the
reference store, including a product the model never saw (only its template). Tiny backbone, seconds each."""
from __future__ import annotations

import csv
import json
import shutil

import numpy as np
import pytest
import torch
from conftest import TINY_COMPARATOR as TINY

from genuine.cli import main as cli
from genuine.infer.runtime import OnnxModel
from genuine.infer.verdict import VERDICTS


def _photo_that_rectifies(ds, product, label="genuine"):
    from genuine.infer.photo import load_photo
    from genuine.infer.rectify import rectify
    from genuine.infer.templates import load_templates

    ts = load_templates(ds.root)
    for r in ds.records:
        if r.product == product and r.label == label and rectify(np.asarray(load_photo(r.path)), ts).ok:
            return r.path
    pytest.skip(f"no photo of {product} rectifies")


def test_checkpoint_and_onnx_describe_a_comparator(comparator_run):
    run, ds, new = comparator_run
    meta = torch.load(run / "best.pt", weights_only=True)["meta"]
    assert meta["arch"] == "comparator" and meta["face_size"] == [96, 64]
    assert meta["products"] == [ds.products[0]] and meta["excluded_products"] == [new]
    assert "thresholds" in meta and meta["calibration"]["temperature"] > 0
    m = OnnxModel(run / "model.onnx")
    assert m.is_comparator and m.face_size == (96, 64) and m.meta["parity_max_abs_diff"] <= 1e-4
    out = m.compare(np.zeros((2, 64, 96, 3), np.uint8), np.zeros((2, 64, 96, 3), np.uint8))
    assert out["p_counterfeit"].shape == (2,) and out["heatmap"].shape == (2, 16, 24)
    with pytest.raises(ValueError, match="compare"):
        m.run(np.zeros((1, 64, 64, 3), np.uint8))


def test_int8_comparator_keeps_its_heads_in_fp32_and_goes_through_the_gate(comparator_run, tmp_path, capsys,
                                                                           monkeypatch):
    import onnx

    from genuine.train.quantize import calibration_inputs, quantize

    run, ds, new = comparator_run
    meta = torch.load(run / "best.pt", weights_only=True)["meta"]
    calib, val, labels = calibration_inputs(meta, str(ds.root))
    assert set(calib) == {"face", "template"} and len(val["face"]) == len(labels) > 0
    fp32 = (run / "model.onnx").read_bytes()
    q = quantize(fp32, calib)
    nodes = onnx.load_from_string(q).graph.node
    dq = {n.output[0] for n in nodes if n.op_type == "DequantizeLinear"}
    convs = [n for n in nodes if n.op_type == "Conv"]
    # the backbone's convolutions read 8-bit weights; the heads', which compare two feature maps, do not
    assert all(c.input[1] in dq for c in convs if "/heads" not in c.name)
    assert not any(c.input[1] in dq for c in convs if "/heads" in c.name)
    p32 = OnnxModel.from_bytes(fp32).compare(val["face"], val["template"])["p_counterfeit"]
    p8 = OnnxModel.from_bytes(q).compare(val["face"], val["template"])["p_counterfeit"]
    assert p8.shape == p32.shape and np.all((p8 >= 0) & (p8 <= 1))
    # the CLI gates it, both ways: limits nothing can pass keep FP32 and say why; limits anything passes keep INT8
    import genuine.train.quantize as tq

    for drop, change, kept in ((-1.0, -1.0, False), (1.0, 1.0, True)):
        monkeypatch.setattr(tq, "MAX_AUROC_DROP", drop)
        monkeypatch.setattr(tq, "MAX_VERDICT_CHANGE", change)
        out_file = tmp_path / f"q-{kept}.onnx"
        assert cli(["export", str(run / "best.pt"), "--out", str(out_file), "--int8"]) == 0
        out = capsys.readouterr().out
        assert f"INT8 gate on {len(labels)} val photos: AUROC" in out
        m = OnnxModel(out_file)
        assert m.is_comparator and m.meta["int8"] is kept and ("INT8 rejected, keeping FP32" in out) is not kept
        if kept:
            assert m.meta["int8_gate"]["val_photos"] == len(labels) and len(out_file.read_bytes()) < len(fp32)


def test_evaluate_scores_the_exported_file_like_the_checkpoint(comparator_run, capsys):
    run, ds, new = comparator_run
    for name in ("best.pt", "model.onnx"):
        assert cli(["evaluate", str(run / name), str(ds.root), "--out", str(run / f"ev-{name}")]) == 0
    out = capsys.readouterr().out
    assert "evaluating the exported file" in out and "Results saved to" in out
    rows = {n: list(csv.DictReader(open(run / f"ev-{n}" / "predictions.csv"))) for n in ("best.pt", "model.onnx")}
    assert len(rows["best.pt"]) == len([r for r in ds.records if r.split == "test"])
    for a, b in zip(rows["best.pt"], rows["model.onnx"]):
        assert a["path"] == b["path"] and abs(float(a["p_counterfeit"]) - float(b["p_counterfeit"])) < 1e-4
    report = json.loads((run / "ev-model.onnx" / "report.json").read_text())
    assert "ONNX" in report["scorer"] and report["products_not_trained_on"] == [new]
    assert report["alignment"]["photos"] == len(rows["best.pt"]) and new in report["per_product"]
    # photos that could not be aligned are INCONCLUSIVE at p = 0.5, never dropped
    for na in report["not_aligned"]:
        row = next(r for r in rows["model.onnx"] if r["path"] == na["path"])
        assert row["verdict"] == "INCONCLUSIVE" and float(row["p_counterfeit"]) == 0.5


def test_inspect_a_product_never_trained_on_with_only_its_template(comparator_run, tmp_path, capsys):
    run, ds, new = comparator_run
    folder = tmp_path / "templates"
    folder.mkdir()
    shutil.copy(ds.root / new / "template.png", folder / f"{new}.png")   # an image folder: product = file stem
    photo = _photo_that_rectifies(ds, new)
    code = cli(["inspect", str(run / "model.onnx"), str(photo), "--templates", str(folder), "--json",
                "--heatmap", str(tmp_path / "h.png")])
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["product"] == new and 0.0 <= r["p_counterfeit"] <= 1.0
    assert "not in the model's training data" in r["reason"]
    # never trained on and no genuine photos of it (issue 22): scored, but not judged on the model's operating point
    assert code == 2 and r["verdict"] == "INCONCLUSIVE" and r["evidence"]["thresholds"]["calibration"] is None
    assert "is not calibrated for this model" in r["reason"] or "not validated" in r["reason"]
    assert r["rectification"]["ok"] and len(r["model_sha256"]) == 64
    assert (tmp_path / "h.png").is_file() and (tmp_path / "h-face.png").is_file()
    # A photo of the other product against this template alone: not scored, an instruction instead
    other = _photo_that_rectifies(ds, ds.products[0])
    assert cli(["inspect", str(run / "model.onnx"), str(other), "--templates", str(folder), "--json"]) == 2
    r = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert r["verdict"] == "INCONCLUSIVE" and r["p_counterfeit"] is None and r["reason"]


def test_a_comparator_needs_templates(comparator_run, capsys):
    run, ds, _ = comparator_run
    assert cli(["inspect", str(run / "model.onnx"), str(ds.records[0].path)]) == 4
    assert "--templates" in capsys.readouterr().err


def test_scan_and_the_reference_store_on_the_comparator_path(comparator_run, tmp_path, capsys):
    run, ds, new = comparator_run
    db = str(tmp_path / "refs.db")
    assert cli(["references", "add", "--db", db, "--product", new, "--template",
                str(ds.root / new / "template.png")]) == 0
    photos = sorted((ds.root / new).glob("*/*.jpg"))[:6]
    # the store's templates serve inspect at once: no retraining, no model in the store
    photo = _photo_that_rectifies(ds, new)
    assert cli(["inspect", str(run / "model.onnx"), str(photo), "--references", db, "--json"]) in (0, 1, 2)
    assert json.loads(capsys.readouterr().out.strip().splitlines()[-1])["product"] == new
    out = tmp_path / "scan"
    assert cli(["scan", str(run / "model.onnx"), *map(str, photos), "--templates", db, "--out", str(out),
                "--workers", "1"]) == 0
    rows = list(csv.DictReader(open(out / "results.csv")))
    assert len(rows) == len(photos) and {r["verdict"] for r in rows} <= set(VERDICTS)
    assert all(r["product"] == new for r in rows if r["p_counterfeit"])
    assert cli(["scan", str(run / "model.onnx"), *map(str, photos), "--templates", db, "--out", str(out),
                "--workers", "1"]) == 0          # a rerun adds nothing
    assert len(open(out / "results.jsonl").readlines()) == len(photos)
    # a comparator keeps no embeddings: adding reference photos with it says what to do instead
    assert cli(["references", "add", str(run / "model.onnx"), str(photos[0]), "--db", db, "--product", new]) == 2
    assert "--template" in capsys.readouterr().err


def test_a_template_added_to_the_store_serves_a_running_inspector(comparator_run, tmp_path):
    from genuine.infer.inspector import Inspector
    from genuine.infer.references import ReferenceDB

    run, ds, new = comparator_run
    db = tmp_path / "live.db"
    ReferenceDB(db, create=True).add_template(new, str(ds.root / new / "template.png"))
    insp = Inspector(run / "model.onnx", templates=str(db))
    photo = _photo_that_rectifies(ds, ds.products[0])
    assert insp.inspect(photo).p_counterfeit is None          # not covered yet
    ReferenceDB(db).add_template(ds.products[0], str(ds.root / ds.products[0] / "template.png"))  # a trainer adds
    r = insp.inspect(photo)
    assert r.product == ds.products[0] and r.p_counterfeit is not None


def test_resume_continues_exactly(synth320, tmp_path, monkeypatch, capsys):
    import genuine.train.comparator_frozen as tc

    args = ["--epochs", "3", "--patience", "5", *TINY]
    assert cli(["train", str(synth320), "--out", str(tmp_path / "a"), *args]) == 0
    real, calls = tc.train_one_epoch, []

    def crash_on_third_epoch(*a, **kw):
        calls.append(1)
        if len(calls) == 3:
            raise KeyboardInterrupt("simulated crash")
        return real(*a, **kw)

    monkeypatch.setattr(tc, "train_one_epoch", crash_on_third_epoch)
    assert cli(["train", str(synth320), "--out", str(tmp_path / "b"), *args]) == 130   # Ctrl-C / a crash
    monkeypatch.setattr(tc, "train_one_epoch", real)
    assert cli(["train", str(synth320), "--out", str(tmp_path / "b"), *args]) == 2
    assert "--resume" in capsys.readouterr().err
    assert cli(["train", str(synth320), "--out", str(tmp_path / "b"), "--resume", *args]) == 0
    sa = torch.load(tmp_path / "a" / "last.pt", weights_only=True)
    sb = torch.load(tmp_path / "b" / "last.pt", weights_only=True)
    assert sa["epoch"] == sb["epoch"] == 2
    for k, v in sa["model"].items():
        assert torch.allclose(v.float(), sb["model"][k].float(), atol=1e-6), k
    assert [h["val_auroc"] for h in sa["history"]] == [h["val_auroc"] for h in sb["history"]]


def test_end_to_end_training_learns_from_twins_too(tmp_path, capsys):
    """--train-backbone: the backbone's later stages learn on fresh views, and SynthPack twins add the ranking loss
    (each pair under one shared augmentation) as in the frozen mode."""
    from genuine.infer.templates import load_templates
    from genuine.train.comparator_e2e import TwinViews
    from genuine.train.face_data import FaceSet, twin_pairs
    from genuine.train.layout import discover
    from genuine.train.synthpack.generate import generate

    data = tmp_path / "twins"
    generate(data, products=1, items_per_class=6, photos_per_item=2, size=320, seed=1, workers=1, progress=False,
             twins=True)
    ds = discover(data)
    fs = FaceSet.build(ds.root, [r for r in ds.records if r.split == "train"], load_templates(ds.root), (96, 64),
                       workers=1)
    pairs = twin_pairs(fs)
    assert len(pairs) > 0
    tv = TwinViews(fs, pairs, seed=0)
    c, g, _ = tv[0]
    # one augmentation for both: identical faces would come out identical, so the pair differs only by the defect
    same = TwinViews(fs, np.array([[pairs[0][1], pairs[0][1]]]), seed=0)[0]
    assert torch.equal(same[0], same[1]) and not torch.equal(c, g)
    assert cli(["train", str(data), "--out", str(tmp_path / "run"), "--epochs", "1", "--train-backbone",
                "--loader-workers", "0", *TINY]) == 0
    err = capsys.readouterr().err
    assert f"{len(pairs)} counterfeit/genuine twin pairs: ranking loss on" in err and "stride 8+ learning" in err
    meta = torch.load(tmp_path / "run" / "best.pt", weights_only=True)["meta"]
    assert meta["data"]["views"] is None and "thresholds" in meta
    rows = [json.loads(line) for line in (tmp_path / "run" / "log.jsonl").read_text().splitlines()]
    assert rows and all(r["rank_loss"] > 0 for r in rows)     # every epoch's pairs went through the ranking loss


def test_val_of_products_left_out_of_training_is_not_called_optimistic(comparator_run):
    run, ds, new = comparator_run
    assert cli(["evaluate", str(run / "model.onnx"), str(ds.root), "--split", "val", "--products", new,
                "--out", str(run / "ev-val-new")]) == 0
    assert json.loads((run / "ev-val-new" / "report.json").read_text())["caveat"] is None
    assert cli(["evaluate", str(run / "model.onnx"), str(ds.root), "--split", "val", "--out", str(run / "ev-val")]) == 0
    assert "optimistic" in json.loads((run / "ev-val" / "report.json").read_text())["caveat"]


def test_a_run_folder_is_accepted_where_a_checkpoint_is_asked_for(comparator_run, tmp_path, capsys):
    run, ds, _ = comparator_run
    assert cli(["export", str(run), "--out", str(tmp_path / "m.onnx")]) == 0        # the folder, as users type it
    assert OnnxModel(tmp_path / "m.onnx").is_comparator
    (tmp_path / "empty").mkdir()
    assert cli(["export", str(tmp_path / "empty"), "--out", str(tmp_path / "x.onnx")]) == 2
    assert "a folder without best.pt" in capsys.readouterr().err
