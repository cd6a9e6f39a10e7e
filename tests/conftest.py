"""Session fixtures: small SynthPack sets generated once per test run (seconds on a CPU)."""
from __future__ import annotations

import pytest

from genuine.train.synthpack.generate import generate

TINY = dict(products=2, items_per_class=8, photos_per_item=2, size=160, difficulty="medium", seed=0, workers=1,
            progress=False)


@pytest.fixture(scope="session")
def tiny_synth(tmp_path_factory):
    """2 products x 8 genuine + 8 counterfeit items (one per defect family) x 2 photos, 160 px."""
    out = tmp_path_factory.mktemp("synth") / "tiny"
    generate(out, **TINY)
    return out


@pytest.fixture(scope="session")
def synth320(tmp_path_factory):
    """2 products x 8 genuine + 8 counterfeit items x 2 photos at 320 px, with <product>/template.png: photos
    large enough to rectify (the aligned baseline, the comparator)."""
    out = tmp_path_factory.mktemp("synth320") / "data"
    generate(out, products=2, items_per_class=8, photos_per_item=2, size=320, difficulty="medium", seed=0,
             workers=1, progress=False)
    assert len(list(out.glob("*/template.png"))) == 2
    return out


@pytest.fixture(scope="session")
def tiny_model(tiny_synth, tmp_path_factory):
    """A 1-epoch mobilenet_v3_small at 64 px, calibrated and exported: best.pt and model.onnx in one folder."""

    import genuine.train.train as tt
    from genuine.cli import main as cli

    run = tmp_path_factory.mktemp("run")
    tt.main(parse(["train", str(tiny_synth), "--out", str(run), "--arch", "whole", "--backbone", "mobilenet_v3_small",
                   "--size", "64", "--epochs", "1", "--patience", "5", "--batch", "16", "--weights", "none"]))
    assert cli(["export", str(run / "best.pt"), "--out", str(run / "model.onnx")]) == 0
    return run


def parse(argv: list[str]):
    """Arguments as `genuine ...` builds them (every option present, with its default): library entry points are
    called with what the parser gives, never with a hand-built Namespace missing what a user could pass."""
    from genuine.cli import build_parser

    return build_parser().parse_args(argv)


TINY_COMPARATOR = ["--backbone", "mobilenet_v3_small", "--weights", "none", "--face-size", "96x64", "--views", "2",
                   "--batch", "16", "--workers", "1"]


@pytest.fixture(scope="session")
def comparator_run(synth320, tmp_path_factory):
    """A comparator trained on the first product only (the second is 'new': only its template), exported."""
    from genuine.cli import main as cli
    from genuine.train.layout import discover

    run = tmp_path_factory.mktemp("comparator")
    ds = discover(synth320)
    new = ds.products[1]
    assert cli(["train", str(synth320), "--out", str(run), "--epochs", "2", "--exclude-products", new,
                *TINY_COMPARATOR]) == 0
    assert cli(["export", str(run / "best.pt"), "--out", str(run / "model.onnx")]) == 0
    return run, ds, new


# The quick subset, `python -m pytest -q -m "not slow"` (README, Testing), leaves out what trains a comparator,
# renders the 320 px set, starts torchrun or Ray, or trains and evaluates at length: the tests that hold most of
# the full suite's minutes on a 2-core machine. Marked here by what a test uses, so a new test of that kind is
# slow without anyone remembering to mark it; every module still has tests in the subset (tiny data, the tiny
# whole-photo model, the CLI). CI runs the full suite.
SLOW_FIXTURES = {"comparator_run", "synth320"}
SLOW_MODULES = {"test_ddp", "test_scan_ray", "test_train", "test_backbones", "test_evidence"}


def pytest_collection_modifyitems(config, items):
    for item in items:
        if SLOW_FIXTURES & set(getattr(item, "fixturenames", ())) or item.module.__name__ in SLOW_MODULES:
            item.add_marker(pytest.mark.slow)
