"""Training, checkpoints, calibration and evaluation on tiny models and images (CPU, seconds)."""
from __future__ import annotations

import csv
import json
import os

import numpy as np
import pytest
import torch
from conftest import parse

from genuine.cli import main as cli
from genuine.infer.errors import UsageError
from genuine.train import checkpoint
from genuine.train.calibrate import fit_temperature, operating_point, sigmoid
from genuine.train.data import PhotoSet, select
from genuine.train.layout import discover
from genuine.train.metrics import accuracy_coverage, binary_metrics, ece
from genuine.train.model import GenuineNet, WeightsError, resolve_weights
from genuine.train.train import losses

SMALL = ["--arch", "whole", "--backbone", "mobilenet_v3_small", "--size", "64", "--batch", "16", "--weights", "none"]


def _args(data, out, epochs: int = 2, *extra: str):
    return parse(["train", str(data), "--out", str(out), *SMALL, "--epochs", str(epochs), "--patience", "5", *extra])


def test_loss_falls_on_a_tiny_set(tiny_synth):
    torch.manual_seed(0)
    ds = discover(tiny_synth)
    data = PhotoSet(select(ds, "train")[:16], 64, ds.products)
    net = GenuineNet("mobilenet_v3_small", n_products=len(ds.products))
    opt = torch.optim.AdamW(net.parameters(), lr=2e-3)
    x = torch.from_numpy(data.images)
    pw = torch.tensor(1.0)
    first = None
    for _ in range(25):
        loss = losses(net, net(x), data.labels, data.products, pw)
        first = first if first is not None else loss.item()
        opt.zero_grad()
        loss.backward()
        opt.step()
    assert loss.item() < 0.6 * first


def test_model_outputs_and_heatmap_shape():
    net = GenuineNet("mobilenet_v3_small", n_products=3).eval()
    out = net(torch.zeros(2, 96, 96, 3, dtype=torch.uint8))
    assert out["logit"].shape == (2,) and out["product_logits"].shape == (2, 3)
    assert out["heatmap"].shape == (2, 3, 3)
    assert torch.allclose(out["embedding"].norm(dim=1), torch.ones(2), atol=1e-5)
    assert "product_logits" not in GenuineNet("mobilenet_v3_small", n_products=1).eval()(torch.zeros(1, 64, 64, 3, dtype=torch.uint8))


def test_train_writes_a_safe_self_describing_checkpoint(tiny_synth, tmp_path, capsys):
    assert cli(["train", str(tiny_synth), "--out", str(tmp_path / "run"), "--epochs", "1", *SMALL]) == 0
    out = capsys.readouterr()
    assert "Results saved to" in out.out and "genuine evaluate" in out.out
    assert "FROM SCRATCH" not in out.err  # --weights none is a choice, not a fallback
    raw = torch.load(tmp_path / "run" / "best.pt", weights_only=True)  # plain tensors and JSON types only
    meta = raw["meta"]
    for key in ("backbone", "preprocess", "labels", "products", "data", "calibration", "thresholds", "metrics",
                "versions", "weights"):
        assert key in meta, key
    assert meta["preprocess"]["size"] == 64 and meta["preprocess"]["resize"] == "letterbox"
    assert len(meta["data"]["fingerprint"]) == 64 and meta["weights"]["source"] == "none"
    th = meta["thresholds"]
    assert 0 <= th["threshold_genuine"] <= th["threshold_suspect"] <= 1
    assert (tmp_path / "run" / "log.jsonl").read_text().count("\n") == 1
    # a second run into the same folder must not silently overwrite it
    assert cli(["train", str(tiny_synth), "--out", str(tmp_path / "run"), "--epochs", "1", *SMALL]) == 2
    assert "--resume" in capsys.readouterr().err


def test_resume_continues_exactly_where_it_stopped(tiny_synth, tmp_path, monkeypatch):
    import genuine.train.train as tt

    tt.main(_args(tiny_synth, tmp_path / "straight", 2, "--loader-workers", "0"))   # augmentation in-process
    real = tt.train_one_epoch
    calls = []

    def crash_on_second_epoch(*a, **kw):
        calls.append(1)
        if len(calls) == 2:
            raise KeyboardInterrupt("simulated crash")
        return real(*a, **kw)

    monkeypatch.setattr(tt, "train_one_epoch", crash_on_second_epoch)
    with pytest.raises(KeyboardInterrupt):
        tt.main(_args(tiny_synth, tmp_path / "crashed", 2, "--loader-workers", "2"))   # in two workers
    monkeypatch.setattr(tt, "train_one_epoch", real)
    with pytest.raises(UsageError, match="--resume"):   # the library raises; the CLI turns it into exit 2
        tt.main(_args(tiny_synth, tmp_path / "crashed", 2, "--loader-workers", "2"))
    tt.main(_args(tiny_synth, tmp_path / "crashed", 2, "--loader-workers", "2", "--resume"))
    a = torch.load(tmp_path / "straight" / "last.pt", weights_only=True)
    b = torch.load(tmp_path / "crashed" / "last.pt", weights_only=True)
    assert a["epoch"] == b["epoch"] == 1
    for k in a["model"]:
        assert torch.allclose(a["model"][k].float(), b["model"][k].float(), atol=1e-6), k


def test_malicious_checkpoint_is_refused_and_never_runs(tmp_path):
    marker = tmp_path / "pwned"

    class Evil:
        def __reduce__(self):
            return (os.system, (f"touch {marker}",))

    bad = tmp_path / "evil.pt"
    with open(bad, "wb") as fh:
        torch.save({"meta": {"format": checkpoint.FORMAT}, "x": Evil()}, fh)
    with pytest.raises(checkpoint.CheckpointError, match="evil.pt"):
        checkpoint.load(bad)
    assert not marker.exists()
    (tmp_path / "junk.pt").write_bytes(b"not a checkpoint")
    with pytest.raises(checkpoint.CheckpointError, match="junk.pt"):
        checkpoint.load(tmp_path / "junk.pt")


def test_perfect_and_random_scorers():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 4000)
    m = binary_metrics(y, y.astype(float))
    assert m["auroc"] == 1.0 and m["tpr_at_fpr_1pct"] == 1.0 and m["accuracy"] == 1.0
    assert m["ece"] == 0.0 and m["brier"] == 0.0
    assert all(c["accuracy"] == 1.0 for c in accuracy_coverage(y, y.astype(float)))
    r = binary_metrics(y, rng.random(4000))
    assert abs(r["auroc"] - 0.5) < 0.03 and r["tpr_at_fpr_1pct"] < 0.03 and abs(r["accuracy"] - 0.5) < 0.03
    # abstaining helps a scorer that knows when it is unsure
    p = np.where(rng.random(4000) < 0.5, y * 0.9 + 0.05, 0.5 + rng.normal(0, 0.01, 4000))
    cov = accuracy_coverage(y, p)
    assert cov[-1]["accuracy"] > cov[0]["accuracy"] + 0.15


def test_temperature_scaling_fixes_an_overconfident_scorer():
    rng = np.random.default_rng(1)
    z = rng.normal(0, 2, 5000)
    y = (rng.random(5000) < sigmoid(z)).astype(int)
    over = 4.0 * z  # four times too sure of itself
    t = fit_temperature(over, y)
    assert 3.4 < t < 4.6
    assert ece(y, sigmoid(over / t)) < 0.5 * ece(y, sigmoid(over))


def test_operating_point_meets_its_targets():
    rng = np.random.default_rng(2)
    y = np.r_[np.zeros(1000, int), np.ones(1000, int)]
    p = np.r_[rng.beta(2, 5, 1000), rng.beta(5, 2, 1000)]
    op = operating_point(p, y, max_fpr=0.01, max_miss=0.05)
    assert op["false_alarm_rate"] <= 0.01 and op["miss_rate"] <= 0.05
    assert op["threshold_genuine"] <= op["threshold_suspect"] and 0 < op["coverage"] < 1


def test_evaluate_reports_a_planted_perfect_scorer_exactly(tiny_synth, tmp_path, monkeypatch):
    import genuine.train.evaluate as ev
    import genuine.train.train as tt

    tt.main(_args(tiny_synth, tmp_path / "run", 1))

    def perfect(net, data, device, batch=64):  # logits that know the answer, in the set's own order
        return {"logit": (data.labels.numpy() * 2 - 1) * 20.0, "embedding": None, "product_prob": None}

    monkeypatch.setattr(ev, "predict", perfect)
    report, y, p, rows = ev.evaluate(tmp_path / "run" / "best.pt", tiny_synth, "test")
    assert report["metrics"]["auroc"] == 1.0 and report["metrics"]["accuracy"] == 1.0
    assert [r["label"] == "counterfeit" for r in rows] == [bool(v) for v in y] and len(rows) == len(p)
    assert all((r["p_counterfeit"] > 0.5) == (r["label"] == "counterfeit") for r in rows)
    assert report["confusion"]["genuine"]["SUSPECT"] == 0 and report["confusion"]["counterfeit"]["GENUINE"] == 0
    assert all(r["auroc"] == 1.0 for r in report["per_defect"].values()) and report["per_defect"]
    assert not report["worst_mistakes"]


def test_evaluate_cli_writes_report_and_plots(tiny_synth, tmp_path, capsys):
    import genuine.train.train as tt

    tt.main(_args(tiny_synth, tmp_path / "run", 1))
    assert cli(["evaluate", str(tmp_path / "run" / "best.pt"), str(tiny_synth), "--out", str(tmp_path / "ev")]) == 0
    assert "Results saved to" in capsys.readouterr().out
    for f in ("report.json", "predictions.csv", "roc.png", "scores.png", "reliability.png", "accuracy_coverage.png"):
        assert (tmp_path / "ev" / f).stat().st_size > 0, f

    rows = list(csv.DictReader(open(tmp_path / "ev" / "predictions.csv")))
    report = json.loads((tmp_path / "ev" / "report.json").read_text())
    assert len(rows) == report["metrics"]["n"] and {r["verdict"] for r in rows} <= {"GENUINE", "SUSPECT", "INCONCLUSIVE"}
    assert cli(["evaluate", str(tmp_path / "missing.pt"), str(tiny_synth)]) == 2


def test_missing_imagenet_weights_say_where_to_put_them(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    with pytest.raises(WeightsError) as e:
        resolve_weights("mobilenet_v3_large", "imagenet")
    msg = str(e.value)
    assert "mobilenet_v3_large-" in msg and str(tmp_path / "torch" / "hub" / "checkpoints") in msg
    assert resolve_weights("mobilenet_v3_large", "auto")["source"] == "none"
    assert "FROM SCRATCH" in capsys.readouterr().err
    with pytest.raises(WeightsError, match="no such file"):
        resolve_weights("mobilenet_v3_large", str(tmp_path / "nope.pth"))


def test_imagenet_weights_load_from_the_cache(tmp_path, monkeypatch):
    """A torchvision state dict in $TORCH_HOME/hub/checkpoints is found and loaded, offline."""
    import torchvision

    from genuine.train.model import imagenet_weights_file

    monkeypatch.setenv("TORCH_HOME", str(tmp_path / "torch"))
    f = imagenet_weights_file("mobilenet_v3_small")
    f.parent.mkdir(parents=True)
    ref = torchvision.models.mobilenet_v3_small(weights=None)
    torch.save(ref.state_dict(), f)
    w = resolve_weights("mobilenet_v3_small", "imagenet")
    assert w["source"] == "imagenet" and len(w["sha256"]) == 64
    net = GenuineNet("mobilenet_v3_small")
    net.load_backbone(w["path"])
    assert torch.equal(net.features[0][0].weight, ref.features[0][0].weight)


def test_finetune_starts_from_a_checkpoint(tiny_model, tiny_synth, tmp_path, capsys):
    ckpt = tiny_model / "best.pt"
    assert cli(["train", str(tiny_synth), "--out", str(tmp_path / "ft"), "--finetune", str(ckpt), "--epochs", "1",
                "--lr", "3e-4", *SMALL]) == 0
    assert "tensors kept" in capsys.readouterr().err
    meta = torch.load(tmp_path / "ft" / "best.pt", weights_only=True)["meta"]
    assert meta["weights"]["source"] == "finetune" and len(meta["weights"]["sha256"]) == 64
    assert cli(["train", str(tiny_synth), "--out", str(tmp_path / "ft2"), "--finetune", str(ckpt), "--epochs", "1",
                "--arch", "whole", "--backbone", "mobilenet_v3_large", "--size", "64", "--weights", "none"]) == 2
    assert "mobilenet_v3_small" in capsys.readouterr().err


def test_a_split_is_decoded_once_into_a_memory_mapped_cache(tiny_synth, tmp_path, monkeypatch):
    """RAM stays flat whatever the split's size: photos decode once into a .npy that training reads through a
    memory map; a rerun decodes nothing, and a changed photo is decoded afresh."""
    import shutil

    import genuine.train.data as td

    monkeypatch.setenv("GENUINE_CACHE", str(tmp_path / "cache"))
    ds = discover(tiny_synth)
    recs = select(ds, "val")[:6]
    first = PhotoSet(recs, 64, ds.products)
    assert isinstance(first._all, np.memmap) and len(list((tmp_path / "cache" / "photos").glob("*.npy"))) == 1
    monkeypatch.setattr(td, "photo_input", lambda *a, **k: pytest.fail("decoded again"))
    again = PhotoSet(recs, 64, ds.products)
    assert np.array_equal(first.images, again.images) and np.array_equal(first.batch(2, 4), first.images[2:4])
    monkeypatch.undo()
    monkeypatch.setenv("GENUINE_CACHE", str(tmp_path / "cache"))
    copy = tmp_path / "copy"
    shutil.copytree(tiny_synth, copy, ignore=shutil.ignore_patterns(".cache"))
    recs2 = select(discover(copy), "val")[:6]
    recs2[0].path.write_bytes(recs[1].path.read_bytes())          # one photo replaced by another
    changed = PhotoSet(recs2, 64, ds.products)
    assert np.array_equal(changed.images[0], first.images[1]) and np.array_equal(changed.images[1:], first.images[1:])
