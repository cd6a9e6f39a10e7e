"""genuine scan --engine ray: the local scan's verdicts on a local Ray (2 CPUs), a lost worker and a killed driver
lose and double nothing, bad items are recorded."""
from __future__ import annotations

import csv
import json
import os
import signal
import subprocess
import sys
import time

import pytest

pytest.importorskip("ray.data")

from genuine.cli import main as cli  # noqa: E402


def _corpus(tiny_synth, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for p in sorted(tiny_synth.glob("*/*/*.jpg"))[:24]:
        (src / f"{p.parent.parent.name}-{p.name}").write_bytes(p.read_bytes())
    (src / "dup.jpg").write_bytes(sorted(tiny_synth.glob("*/*/*.jpg"))[0].read_bytes())   # a duplicate
    (src / "broken.jpg").write_bytes(b"\xff\xd8\xff\xe0 not really a jpeg")                # a bad item
    (src / "notes.txt").write_text("not a photo")
    return src


def _rows(run):
    with open(run / "results.csv", newline="") as fh:
        return sorted(csv.DictReader(fh), key=lambda r: r["path"])


def test_ray_gives_the_local_scans_verdicts_and_survives_a_lost_worker(tiny_model, tiny_synth, tmp_path, monkeypatch,
                                                                        capsys):
    model, src = str(tiny_model / "model.onnx"), _corpus(tiny_synth, tmp_path)
    assert cli(["scan", model, str(src), "--out", str(tmp_path / "local"), "--workers", "2"]) == 0
    monkeypatch.setenv("GENUINE_TEST_KILL_WORKER_ONCE", str(tmp_path / "killed"))
    assert cli(["scan", model, str(src), "--out", str(tmp_path / "ray"), "--engine", "ray", "--actors", "2"]) == 0
    assert (tmp_path / "killed").exists()                         # a worker did die mid-run, and its task was retried
    local, ray = _rows(tmp_path / "local"), _rows(tmp_path / "ray")
    assert local == ray and len(ray) == 26                        # every photo, once, with the same verdict
    errors = [r for r in ray if r["verdict"] == "ERROR"]
    assert {os.path.basename(r["path"]) for r in errors} == {"broken.jpg", "notes.txt"}
    assert any(r["duplicate_paths"] for r in ray)                 # the duplicate joined its twin, scored once
    summary = json.loads((tmp_path / "ray" / "summary.json").read_text())
    assert summary["this_run"]["engine"] == "ray" and summary["total_photos"] == 27
    capsys.readouterr()
    assert cli(["scan", model, str(src), "--out", str(tmp_path / "ray"), "--engine", "ray"]) == 0   # a rerun
    assert "27 already done, 0 new records" in capsys.readouterr().out


def test_a_killed_ray_driver_resumes_without_losing_or_doubling(tiny_model, tiny_synth, tmp_path):
    import io

    from PIL import Image

    model, src, run = str(tiny_model / "model.onnx"), _corpus(tiny_synth, tmp_path), tmp_path / "run"
    for i, p in enumerate(sorted(tiny_synth.glob("*/*/*.jpg"))):   # enough photos that the kill lands mid-run
        buf = io.BytesIO()
        Image.open(p).save(buf, "JPEG", quality=80)
        (src / f"re-{i:03d}.jpg").write_bytes(buf.getvalue())
    n = len(list(src.iterdir())) - 1                               # rows: the duplicate joins its twin
    cmd = [sys.executable, "-m", "genuine", "scan", model, str(src), "--out", str(run), "--engine", "ray",
           "--actors", "1", "--batch", "2"]
    proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    journal = run / "results.jsonl"
    deadline = time.time() + 120
    while time.time() < deadline and (not journal.exists() or journal.read_text().count("\n") < 1):
        time.sleep(0.05)
    os.killpg(proc.pid, signal.SIGKILL)                           # the driver and its local Ray, mid-run
    proc.wait()
    before = journal.read_text().count("\n")
    assert 1 <= before < n
    r = subprocess.run(cmd, capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    rows = _rows(run)
    assert len(rows) == n and len({r["path"] for r in rows}) == n
    records = [json.loads(line) for line in journal.read_text().splitlines() if line.strip()]
    assert len(records) == n + 1 and len({rec["path"] for rec in records}) == n + 1   # + the duplicate's path
