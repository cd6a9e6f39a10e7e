"""Issue 15: a model or calibration that knows nothing never says GENUINE (or SUSPECT)."""
from __future__ import annotations

import numpy as np
import pytest

from genuine.infer.errors import UsageError
from genuine.infer.verdict import GENUINE, INCONCLUSIVE, SUSPECT, decide, decisive, not_validated
from genuine.train.calibrate import operating_point, validation


def test_validation_needs_an_auroc_interval_clear_of_chance_and_enough_photos():
    rng = np.random.default_rng(0)
    y = np.repeat([0, 1], 60)
    good = validation(np.where(y == 1, 0.7, 0.3) + rng.normal(0, 0.1, 120), y)
    assert good["validated"] and good["auroc_ci95"][0] > 0.5 and good["why"] is None
    chance = validation(rng.random(120), y)
    assert not chance["validated"] and "not clearly above chance" in chance["why"]
    assert chance["auroc_ci95"][0] <= 0.5 <= chance["auroc_ci95"][1]
    few = validation(np.array([0.1, 0.2, 0.8, 0.9]), np.array([0, 0, 1, 1]))
    assert not few["validated"] and "only 2 genuine photos (at least 10 are needed)" in few["why"]
    # a brand's own set: 10 genuine photos and a handful of counterfeits (5 photos of 3 items) is enough ...
    y = np.repeat([0, 1], [10, 5])
    p = np.r_[np.linspace(0.1, 0.3, 10), np.linspace(0.7, 0.9, 5)]
    items = [f"g{i}" for i in range(10)] + ["c0", "c0", "c1", "c1", "c2"]
    assert validation(p, y, groups=items)["validated"]
    # ... but not 5 photos of 2 items
    two = validation(p, y, groups=items[:10] + ["c0", "c0", "c0", "c1", "c1"])
    assert not two["validated"] and "5 counterfeit photos of 2 counterfeit items (at least 5 photos of 3" in two["why"]


def test_items_not_photos_are_resampled():
    """Ten photos of each of 12 items are 12 pieces of evidence, not 120: the interval is wider."""
    rng = np.random.default_rng(1)
    item = np.repeat(np.arange(12), 10)
    y = (item % 2).astype(int)
    p = 0.5 + 0.15 * (y - 0.5) + np.repeat(rng.normal(0, 0.15, 12), 10) + rng.normal(0, 0.02, 120)
    by_photo, by_item = validation(p, y), validation(p, y, groups=item)
    assert by_item["items"] == 12 and by_photo["items"] == 120
    width = lambda v: v["auroc_ci95"][1] - v["auroc_ci95"][0]  # noqa: E731
    assert width(by_item) > 1.5 * width(by_photo)


def test_separated_classes_leave_the_unseen_gap_inconclusive():
    y = np.repeat([0, 1], 40)
    p = np.where(y == 1, np.linspace(0.7, 0.95, 80), np.linspace(0.05, 0.3, 80))
    op = operating_point(p, y)
    assert op["threshold_genuine"] < op["threshold_suspect"]
    assert decide(0.1, op) == GENUINE and decide(0.9, op) == SUSPECT and decide(0.5, op) == INCONCLUSIVE
    assert op["false_alarm_rate"] == 0 and op["miss_rate"] == 0 and op["validation"]["validated"]


def test_a_degenerate_operating_point_is_refused():
    a = 0.5
    p = np.array([a] * 20 + [float(np.nextafter(a, 1.0))] * 20)
    with pytest.raises(UsageError, match="degenerate operating point.*add validation photos"):
        operating_point(p, np.repeat([0, 1], 20))


def test_unvalidated_thresholds_decide_nothing_and_say_why():
    th = {"threshold_genuine": 0.3, "threshold_suspect": 0.7,
          "validation": {"validated": False, "why": "validation AUROC 0.480 (95% interval 0.41-0.55) is not "
                                                    "clearly above chance"}}
    assert {decide(p, th) for p in (0.0, 0.5, 1.0)} == {INCONCLUSIVE}
    assert "not clearly above chance" in not_validated(th)
    assert decide(0.0, {**th, "validation": {"validated": True}}) == GENUINE


def test_the_digits_that_decide_are_shown():
    assert decisive(0.501, 0.5) == ["0.501", "0.500"]
    p, t = decisive(0.5000004, 0.5)
    assert p != t


def test_a_chance_level_model_never_says_genuine_or_suspect(tiny_model, tiny_synth, capsys):
    """The tiny fixture model is at chance on its val split: its calibration is stored as not validated, and every
    test photo gets INCONCLUSIVE with the reason, in the inspector and in evaluate alike."""
    from genuine.cli import main as cli
    from genuine.infer.inspector import Inspector
    from genuine.train.data import select
    from genuine.train.layout import discover

    insp = Inspector(tiny_model / "model.onnx")
    v = insp.meta["thresholds"]["validation"]
    assert v["validated"] is False and v["auroc_ci95"][0] <= 0.5
    results = [insp.inspect(r.path) for r in select(discover(tiny_synth), "test")]
    assert {r.verdict for r in results} == {INCONCLUSIVE}
    assert all(("not validated" in r.reason or "product unknown" in r.reason or r.quality["issues"]) for r in results)
    capsys.readouterr()
    assert cli(["evaluate", str(tiny_model / "best.pt"), str(tiny_synth), "--out", str(tiny_model / "ev")]) == 0
    err = capsys.readouterr().err
    assert "WARNING: weak model" in err and "not validated" in err and "all INCONCLUSIVE" in err
    import json

    confusion = json.loads((tiny_model / "ev" / "report.json").read_text())["confusion"]
    assert all(confusion[lab][v] == 0 for lab in ("genuine", "counterfeit") for v in (GENUINE, SUSPECT)), confusion
    assert sum(confusion[lab][INCONCLUSIVE] for lab in confusion) == len(results)


def test_a_model_file_with_a_degenerate_operating_point_is_refused(tiny_model, tmp_path):
    import json

    import onnx

    from genuine.infer.runtime import ModelError, OnnxModel

    m = onnx.load(str(tiny_model / "model.onnx"))
    meta = json.loads(m.metadata_props[0].value)
    meta["thresholds"].update(threshold_genuine=0.8, threshold_suspect=0.2)
    m.metadata_props[0].value = json.dumps(meta)
    onnx.save(m, str(tmp_path / "m.onnx"))
    with pytest.raises(ModelError, match="degenerate operating point.*recalibrate"):
        OnnxModel(tmp_path / "m.onnx")


def test_training_that_stops_early_says_so(tmp_path, capsys):
    """The epoch loop every trainer shares: it says when and why it stopped and where the best epoch was."""
    import torch

    from conftest import parse
    from genuine.train.loop import fit

    net = torch.nn.Linear(1, 1)
    opt = torch.optim.SGD(net.parameters(), lr=0.1)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1.0)
    aurocs = iter([0.60, 0.71, 0.65, 0.64, 0.63, 0.62])
    args = parse(["train", "D", "--out", str(tmp_path), "--epochs", "6", "--patience", "2"])
    history = fit(net, opt, sched, {}, tmp_path, args, None, run_epoch=lambda e: {"train_loss": 0.1},
                  val_metrics=lambda: {"auroc": next(aurocs), "accuracy": 0.5}, describe=lambda r: "")
    assert len(history) == 4
    assert "stopped at epoch 4: no val AUROC gain for 2 epochs; best 0.7100 at epoch 2" in capsys.readouterr().err


def test_each_trainer_has_its_own_defaults_without_the_cli():
    """Epochs and patience left unset take the trainer's own defaults (train/loop.py with_defaults), so a caller of
    the library gets what the CLI gets; the arguments given are not changed."""
    from conftest import parse
    from genuine.train import train, train_comparator
    from genuine.train.loop import with_defaults

    args = parse(["train", "D", "--out", "x"])
    assert args.epochs is None and args.patience is None       # the CLI no longer patches them
    comp = with_defaults(args, train_comparator.DEFAULTS)
    assert (comp.epochs, comp.patience) == (40, 8) and args.epochs is None
    whole = with_defaults(parse(["train", "D", "--out", "x", "--arch", "whole", "--epochs", "3"]), train.DEFAULTS)
    assert (whole.epochs, whole.patience) == (3, 5)
