"""ONNX export and the on-device inspector: parity, metadata, bad input, quality gate, verdicts, exit codes."""
from __future__ import annotations

import json
import subprocess
import sys

import numpy as np
import onnx
import pytest
import torch
from PIL import Image, ImageFilter

from genuine.cli import main as cli
from genuine.infer.inspector import Inspector
from genuine.infer.photo import PhotoError
from genuine.infer.quality import Quality
from genuine.infer.runtime import ModelError, OnnxModel


def _photos(root, n=4):
    return sorted(root.glob("*/*/*.jpg"))[:n]


def _with_meta(src, dst, **changes):
    m = onnx.load(str(src))
    meta = json.loads(m.metadata_props[0].value)
    for k, v in changes.items():
        meta[k] = {**meta[k], **v} if isinstance(v, dict) else v
    m.metadata_props[0].value = json.dumps(meta)
    onnx.save(m, str(dst))
    return dst


def test_infer_never_imports_torch():
    """Every module of infer/ (walked, not listed: a new module is covered the day it is added) imports only the
    handheld's base install: no torch, torchvision, timm, albumentations, scikit-learn or matplotlib, and never the
    train package."""
    import pkgutil

    from genuine import infer

    mods = sorted(f"genuine.infer.{m.name}" for m in pkgutil.iter_modules(infer.__path__))
    assert {f"genuine.infer.{m}" for m in ("inspector", "scan", "scan_worker", "variation_store")} <= set(mods)
    code = (f"import importlib, sys\nfor m in {mods!r}: importlib.import_module(m)\n"
            "bad = sorted(m for m in sys.modules if m.split('.')[0] in "
            "('torch', 'torchvision', 'timm', 'albumentations', 'sklearn', 'matplotlib', 'train') "
            "or m.startswith('genuine.train') or m in ('genuine.cli', 'genuine.dispatch'))\n"
            "print(bad); sys.exit(1 if bad else 0)")
    r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # Also the imports inside functions, which run only on some paths: infer never imports upward or heavy.
    import ast
    from pathlib import Path

    banned = ("torch", "torchvision", "timm", "albumentations", "sklearn", "matplotlib", "train", "genuine.train",
              "genuine.cli", "genuine.dispatch")
    for f in sorted(Path(infer.__path__[0]).glob("*.py")):
        for node in ast.walk(ast.parse(f.read_text())):
            names = ([a.name for a in node.names] if isinstance(node, ast.Import)
                     else [node.module or ""] if isinstance(node, ast.ImportFrom) and not node.level else [])
            for n in names:
                assert not any(n == b or n.startswith(b + ".") for b in banned), f"{f.name} imports {n}"


def test_metadata_round_trip(tiny_model):
    ckpt = torch.load(tiny_model / "best.pt", weights_only=True)["meta"]
    m = OnnxModel(tiny_model / "model.onnx")
    assert m.meta["thresholds"] == ckpt["thresholds"] and m.meta["products"] == ckpt["products"]
    assert m.meta["input"]["size"] == 64 and m.meta["calibration"] == ckpt["calibration"]
    assert m.meta["data"]["fingerprint"] == ckpt["data"]["fingerprint"] and m.meta["int8"] is False
    assert m.meta["parity_max_abs_diff"] <= 1e-4
    import hashlib

    assert m.sha256 == hashlib.sha256((tiny_model / "model.onnx").read_bytes()).hexdigest()
    card = (tiny_model / "model.md").read_text()
    assert m.sha256 in card and "Intended use" in card and "Limitations" in card
    assert "validation evidence: model: NOT VALIDATED" in card and "answers only INCONCLUSIVE" in card   # at chance
    # dynamic batch
    assert m.run(np.zeros((3, 64, 64, 3), np.uint8))["p_counterfeit"].shape == (3,)


def test_inspector_matches_the_torch_evaluation_path(tiny_model, tiny_synth):
    from genuine.train import checkpoint
    from genuine.train.calibrate import sigmoid
    from genuine.train.data import PhotoSet
    from genuine.train.layout import discover
    from genuine.train.train import predict

    ckpt = checkpoint.load(tiny_model / "best.pt")
    ds = discover(tiny_synth)
    recs = [r for r in ds.records if r.split == "test"][:6]
    torch_p = sigmoid(predict(checkpoint.build_from(ckpt), PhotoSet(recs, 64, ds.products), torch.device("cpu"))["logit"]
                      / ckpt["meta"]["calibration"]["temperature"])
    insp = Inspector(tiny_model / "model.onnx")
    onnx_p = np.array([insp.inspect(r.path).p_counterfeit for r in recs])
    assert np.abs(torch_p - onnx_p).max() < 1e-4


def test_every_input_kind_gives_the_same_answer(tiny_model, tiny_synth):
    insp = Inspector(tiny_model / "model.onnx")
    path = _photos(tiny_synth, 1)[0]
    ref = insp.inspect(path).p_counterfeit
    img = Image.open(path)
    for src in (str(path), path.read_bytes(), img, np.asarray(img.convert("RGB"))):
        assert abs(insp.inspect(src).p_counterfeit - ref) < 1e-6


def test_exif_rotated_photo_gives_the_upright_result(tiny_model, tiny_synth, tmp_path):
    insp = Inspector(tiny_model / "model.onnx")
    up = Image.open(_photos(tiny_synth, 1)[0]).convert("RGB")
    up.save(tmp_path / "up.png")
    exif = Image.Exif()
    exif[0x0112] = 6
    up.transpose(Image.Transpose.ROTATE_90).save(tmp_path / "side.png", exif=exif.tobytes())
    assert insp.inspect(tmp_path / "side.png").p_counterfeit == insp.inspect(tmp_path / "up.png").p_counterfeit


@pytest.mark.parametrize("name, data, kind", [("empty.jpg", b"", "empty"), ("text.jpg", b"hello" * 50, "not_image")])
def test_bad_photos_are_clear_errors(tiny_model, tmp_path, name, data, kind):
    (tmp_path / name).write_bytes(data)
    with pytest.raises(PhotoError) as e:
        Inspector(tiny_model / "model.onnx").inspect(tmp_path / name)
    assert e.value.kind == kind and name in str(e.value)


def test_truncated_photo_is_refused(tiny_model, tiny_synth, tmp_path, capsys):
    data = _photos(tiny_synth, 1)[0].read_bytes()
    (tmp_path / "cut.jpg").write_bytes(data[: len(data) // 2])
    with pytest.raises(PhotoError, match="truncated"):
        Inspector(tiny_model / "model.onnx").inspect(tmp_path / "cut.jpg")
    assert cli(["inspect", str(tiny_model / "model.onnx"), str(tmp_path / "cut.jpg")]) == 3
    assert "cut.jpg" in capsys.readouterr().err


def test_quality_gate_blur_and_dark(tiny_model, tiny_synth):
    insp = Inspector(tiny_model / "model.onnx")
    img = Image.open(_photos(tiny_synth, 1)[0]).convert("RGB").resize((320, 240))
    blurred = insp.inspect(img.filter(ImageFilter.GaussianBlur(20)))  # blurred at the model's own 64 px scale too
    assert blurred.verdict == "INCONCLUSIVE" and "hold steady" in blurred.reason
    dark = insp.inspect(Image.fromarray((np.asarray(img) * 0.12).astype(np.uint8)))
    assert dark.verdict == "INCONCLUSIVE" and "more light" in dark.reason
    assert insp.inspect(img).quality["issues"] == []


def test_verdict_logic_on_planted_outputs(tiny_model):
    insp = Inspector(tiny_model / "model.onnx")
    insp.meta = {**insp.meta, "thresholds": {"threshold_genuine": 0.3, "threshold_suspect": 0.7}}
    ok = Quality(100.0, 120.0, 0.0, 640, 480)
    heat = np.zeros((2, 2), np.float32)
    heat[0, 1] = 5.0
    two = {"product_prob": np.array([0.9, 0.1], np.float32), "heatmap": heat}
    for p, verdict in ((0.9, "SUSPECT"), (0.1, "GENUINE"), (0.5, "INCONCLUSIVE")):
        r = insp.judge_photo({**two, "p_counterfeit": np.float32(p)}, ok, "x")
        assert r.verdict == verdict and abs(r.authenticity - (1 - p)) < 1e-6
    assert "upper right" in insp.judge_photo({**two, "p_counterfeit": np.float32(0.9)}, ok, "x").reason
    unsure = insp.judge_photo({**two, "p_counterfeit": np.float32(0.9), "product_prob": np.array([0.1, 0.3])}, ok, "x")
    assert unsure.verdict == "INCONCLUSIVE" and "unsure which product" in unsure.reason and "0.30" in unsure.reason
    tied = insp.judge_photo({**two, "p_counterfeit": np.float32(0.9), "product_prob": np.array([0.505, 0.495])}, ok, "x")
    assert tied.verdict == "INCONCLUSIVE" and tied.product is None and "product unknown" in tied.reason
    blurry = Quality(1.0, 120.0, 0.0, 640, 480, [("blur", "hold steady and retake")])
    assert insp.judge_photo({**two, "p_counterfeit": np.float32(0.99)}, blurry, "x").verdict == "INCONCLUSIVE"


def test_exit_codes(tiny_model, tiny_synth, tmp_path, capsys):
    photos = [str(p) for p in _photos(tiny_synth, 2)]
    src = tiny_model / "model.onnx"
    ok = {"validation": {"validated": True, "why": None}}   # planted thresholds: the tiny model itself is at chance
    cases = {0: {"threshold_genuine": 1.01, "threshold_suspect": 1.02, **ok},
             1: {"threshold_genuine": -1.0, "threshold_suspect": 0.0, **ok},
             2: {"threshold_genuine": 0.0, "threshold_suspect": 1.01, **ok}}
    for code, th in cases.items():
        m = _with_meta(src, tmp_path / f"m{code}.onnx", thresholds=th, product_min_confidence=0.0, product_margin=0.0)
        assert cli(["inspect", str(m), *photos]) == code
    out = capsys.readouterr().out
    assert "GENUINE" in out and "SUSPECT" in out and "INCONCLUSIVE" in out
    m = _with_meta(src, tmp_path / "mj.onnx", thresholds=cases[1], product_min_confidence=0.0, product_margin=0.0)
    assert cli(["inspect", str(m), photos[0], "--json", "--heatmap", str(tmp_path / "h.png")]) == 1
    rec = json.loads(capsys.readouterr().out.strip())
    assert rec["verdict"] == "SUSPECT" and len(rec["model_sha256"]) == 64 and rec["reason"]
    with Image.open(tmp_path / "h.png") as h, Image.open(photos[0]) as ph:
        assert h.size == ph.size  # the overlay is drawn on the photo, letterbox removed


def test_broken_models_are_refused_clearly(tiny_model, tmp_path, capsys):
    (tmp_path / "junk.onnx").write_bytes(b"\x08\x01garbage")
    with pytest.raises(ModelError, match="junk.onnx"):
        OnnxModel(tmp_path / "junk.onnx")
    with pytest.raises(ModelError, match="not found"):
        OnnxModel(tmp_path / "none.onnx")
    m = onnx.load(str(tiny_model / "model.onnx"))
    del m.metadata_props[:]
    onnx.save(m, str(tmp_path / "bare.onnx"))
    with pytest.raises(ModelError, match="without genuine metadata"):
        OnnxModel(tmp_path / "bare.onnx")
    # a model whose weights live in a side file is refused: single-file models only
    m = onnx.load(str(tiny_model / "model.onnx"))
    onnx.save(m, str(tmp_path / "ext.onnx"), save_as_external_data=True, location="ext.data", size_threshold=0)
    with pytest.raises(ModelError, match="ext.onnx"):
        OnnxModel(tmp_path / "ext.onnx")
    assert cli(["inspect", str(tmp_path / "junk.onnx"), "x.jpg"]) == 4
    assert "junk.onnx" in capsys.readouterr().err


def test_int8_gate(tiny_model, tmp_path, capsys):
    from genuine.train.quantize import gate_decision

    ok = {"auroc_fp32": 0.95, "auroc_int8": 0.948, "verdicts_changed": 0.005}
    assert gate_decision(ok) is None
    assert "AUROC drops" in gate_decision({**ok, "auroc_int8": 0.94})
    assert "verdicts change" in gate_decision({**ok, "verdicts_changed": 0.02})
    assert cli(["export", str(tiny_model / "best.pt"), "--out", str(tmp_path / "q.onnx"), "--int8"]) == 0
    out = capsys.readouterr().out
    meta = OnnxModel(tmp_path / "q.onnx").meta
    card = (tmp_path / "q.md").read_text()
    if meta["int8"]:
        assert meta["int8_gate"]["verdicts_changed"] <= 0.01 and "INT8 static QDQ" in card
    else:
        assert "INT8 rejected, keeping FP32" in out and "refused, FP32 kept" in card


def test_a_weak_model_says_so_wherever_it_is_used(tiny_model, tiny_synth, tmp_path, capsys):
    from genuine.infer.runtime import weak_model_warning

    meta = OnnxModel(tiny_model / "model.onnx").meta
    photo = str(_photos(tiny_synth, 1)[0])
    weak = _with_meta(tiny_model / "model.onnx", tmp_path / "weak.onnx", metrics={"val": {"auroc": 0.61}},
                      thresholds={"coverage": 0.15})
    cli(["inspect", str(weak), photo])
    err = capsys.readouterr().err
    assert "weak model: validation AUROC 0.610" in err and "15%" in err
    strong = _with_meta(tiny_model / "model.onnx", tmp_path / "strong.onnx", metrics={"val": {"auroc": 0.995}})
    cli(["inspect", str(strong), photo])
    assert "weak model" not in capsys.readouterr().err
    assert weak_model_warning({}) is None  # a model without metrics is not judged
    from genuine.train.modelcard import model_card

    card = model_card(tmp_path / "m.onnx", {**meta, "metrics": {"val": {**meta["metrics"]["val"], "auroc": 0.55}}},
                      "0" * 64, 1000, None)
    assert card.splitlines()[2].startswith("**weak model: validation AUROC 0.550")


def test_parity_covers_every_output_the_runtime_uses():
    """The export check compares every output: an embedding or a heatmap that drifts fails it even when the
    probability matches, and a graph missing an output is refused."""
    from genuine.train.export import PARITY_TOL, ExportError, _worst

    rng = np.random.default_rng(0)
    ref = {"p_counterfeit": rng.random(4), "embedding": rng.standard_normal((4, 8)),
           "heatmap": 20 * rng.standard_normal((4, 5, 5)), "product_prob": rng.random((4, 3))}
    same = {k: v.astype(np.float32) for k, v in ref.items()}
    torch_ref = {k: torch.from_numpy(v) for k, v in ref.items()}
    assert _worst(torch_ref, same) <= PARITY_TOL
    drift = {**same, "embedding": same["embedding"] + 1e-2}
    assert _worst(torch_ref, drift) > PARITY_TOL
    with pytest.raises(ExportError, match="outputs"):
        _worst(torch_ref, {k: v for k, v in same.items() if k != "heatmap"})
