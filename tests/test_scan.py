"""Batch scans: resume after kill -9, zip traversal, bad files, duplicates, outputs, exit codes."""
from __future__ import annotations

import csv
import io
import json
import os
import signal
import struct
import subprocess
import sys
import time
import zipfile
import zlib

import numpy as np
import pytest
from PIL import Image

from genuine.cli import main as cli
from genuine.infer.scan import Journal
from genuine.infer.scan_outputs import merge


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model / "model.onnx"


def _jpeg(seed: int, w=96, h=72) -> bytes:
    a = np.random.default_rng(seed).integers(0, 255, (h, w, 3), dtype=np.uint8)
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=80)
    return buf.getvalue()


def _rows(run):
    return merge(Journal(run / "results.jsonl").close_and_records())


def test_killed_scan_resumes_with_every_photo_exactly_once(model, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    n = 240
    for i in range(n):
        (src / f"p{i:03d}.jpg").write_bytes(_jpeg(i))
    run = tmp_path / "run"
    cmd = [sys.executable, "-m", "genuine", "scan", str(model), str(src), "--out", str(run), "--workers", "1", "--batch", "1"]
    for attempt in range(5):  # kill it mid-way (retry in the unlikely case it finished first)
        proc = subprocess.Popen(cmd, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
        journal = run / "results.jsonl"
        t0 = time.time()
        while time.time() - t0 < 60:
            if journal.exists() and journal.stat().st_size > 2000 * (attempt + 1):
                break
            time.sleep(0.002)
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        lines = journal.read_bytes().count(b"\n")
        if lines < n:
            break
    assert lines < n, "the scan finished before it could be killed"
    with open(run / "results.jsonl", "ab") as fh:  # and a torn half-line, as a kill mid-write leaves
        fh.write(b'{"type": "photo", "path": "/torn')
    r = subprocess.run(cmd, capture_output=True, text=True)
    assert r.returncode == 0, r.stderr
    rows = _rows(run)
    paths = [p for row in rows for p in row["paths"]]
    assert sorted(paths) == sorted(str(p) for p in src.iterdir()) and len(paths) == len(set(paths)) == n
    recs = Journal(run / "results.jsonl").close_and_records()
    assert len([x["path"] for x in recs]) == n  # nothing scored twice across the two runs
    with open(run / "results.csv", newline="") as fh:
        assert len(list(csv.DictReader(fh))) == n


def _png_header(w: int, h: int) -> bytes:
    """A valid little PNG that claims w x h pixels: a decompression bomb's calling card."""
    def chunk(kind: bytes, data: bytes) -> bytes:
        return struct.pack(">I", len(data)) + kind + data + struct.pack(">I", zlib.crc32(kind + data))

    return (b"\x89PNG\r\n\x1a\n" + chunk(b"IHDR", struct.pack(">IIBBBBB", w, h, 8, 2, 0, 0, 0))
            + chunk(b"IDAT", zlib.compress(b"")) + chunk(b"IEND", b""))


def test_bad_files_never_stop_a_run(model, tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(3):
        (src / f"good{i}.jpg").write_bytes(_jpeg(100 + i))
    good = _jpeg(7)
    (src / "truncated.jpg").write_bytes(good[: len(good) // 2])
    (src / "empty.jpg").write_bytes(b"")
    (src / "text.jpg").write_text("not a photo\n" * 20)
    (src / "huge.png").write_bytes(_png_header(30000, 30000))
    (src / "notes.txt").write_text("case notes")
    assert cli(["scan", str(model), str(src), "--out", str(tmp_path / "run"), "--workers", "2"]) == 0
    rows = {r["paths"][0].rsplit("/", 1)[-1]: r for r in _rows(tmp_path / "run")}
    assert len(rows) == 8
    kinds = {k: r.get("error_kind") for k, r in rows.items() if r["verdict"] == "ERROR"}
    assert kinds == {"truncated.jpg": "truncated", "empty.jpg": "empty", "text.jpg": "not_image",
                     "huge.png": "too_large", "notes.txt": "skipped"}
    assert all(rows[f"good{i}.jpg"]["verdict"] in ("GENUINE", "SUSPECT", "INCONCLUSIVE") for i in range(3))
    summary = json.loads((tmp_path / "run" / "summary.json").read_text())
    assert summary["errors"]["truncated"] == 1 and summary["counts"]["ERROR"] == 5
    assert cli(["scan", str(model), str(src), "--out", str(tmp_path / "run"), "--fail-on", "error"]) == 3


def test_zip_read_in_place_and_traversal_refused(model, tmp_path):
    z = tmp_path / "case.zip"
    with zipfile.ZipFile(z, "w") as zf:
        zf.writestr("photos/a.jpg", _jpeg(1))
        zf.writestr("photos/b.jpg", _jpeg(2))
        zf.writestr("../../escape.jpg", _jpeg(3))
        zf.writestr("/etc/abs.jpg", _jpeg(4))
    run = tmp_path / "run"
    assert cli(["scan", str(model), str(z), "--out", str(run)]) == 0
    rows = {r["paths"][0]: r for r in _rows(run)}
    assert rows[f"{z}!photos/a.jpg"]["verdict"] != "ERROR" and rows[f"{z}!photos/b.jpg"]["verdict"] != "ERROR"
    for bad in ("../../escape.jpg", "/etc/abs.jpg"):
        assert rows[f"{z}!{bad}"]["error_kind"] == "refused_archive_entry"
    assert not (tmp_path.parent / "escape.jpg").exists() and not list(tmp_path.rglob("escape.jpg"))


def test_duplicates_are_scored_once_with_all_paths(model, tmp_path):
    src = tmp_path / "src"
    (src / "a").mkdir(parents=True)
    (src / "b").mkdir()
    data = _jpeg(42)
    for p in ("a/x.jpg", "b/x.jpg", "b/copy.jpg"):
        (src / p).write_bytes(data)
    (src / "other.jpg").write_bytes(_jpeg(43))
    run = tmp_path / "run"
    assert cli(["scan", str(model), str(src), "--out", str(run), "--workers", "2"]) == 0
    rows = _rows(run)
    assert len(rows) == 2
    dup = next(r for r in rows if len(r["paths"]) > 1)
    assert sorted(dup["paths"]) == sorted(str(src / p) for p in ("a/x.jpg", "b/x.jpg", "b/copy.jpg"))
    assert json.loads((run / "summary.json").read_text())["duplicates"] == 2
    scored = [r for r in Journal(run / "results.jsonl").close_and_records() if r["type"] == "photo"]
    assert len(scored) == 2


def test_path_list_on_stdin_and_report(model, tmp_path, monkeypatch, capsys):
    files = []
    for i in range(3):
        f = tmp_path / f"s{i}.jpg"
        f.write_bytes(_jpeg(200 + i))
        files.append(str(f))
    monkeypatch.setattr(sys, "stdin", io.StringIO("\n".join(files) + "\n"))
    run = tmp_path / "run"
    assert cli(["scan", str(model), "-", "--out", str(run)]) == 0
    assert "Results saved to" in capsys.readouterr().out
    html = (run / "report.html").read_text()
    assert "http://" not in html and "https://" not in html
    for f in files:
        assert json.dumps(f)[1:-1] in html
    from genuine.infer.runtime import OnnxModel, weak_model_warning

    warning = weak_model_warning(OnnxModel(model).meta)
    assert json.loads((run / "summary.json").read_text())["model_warning"] == warning
    assert (warning is None) == ('class="warning"' not in html)
    # how the model was validated travels with the shared page (the tiny model is not validated: it says so)
    assert "<dt>validation</dt>" in html and "NOT VALIDATED" in html and "bootstrap interval" in html
    # every report comes out readable by colleagues on a shared drive (one atomic write, one mode)
    assert {oct(os.stat(run / n).st_mode & 0o777) for n in ("results.csv", "summary.json", "report.html")} == {"0o644"}


def test_fail_on_and_model_errors(model, tmp_path, capsys):
    (tmp_path / "p.jpg").write_bytes(_jpeg(5))
    assert cli(["scan", str(tmp_path / "nope.onnx"), str(tmp_path), "--out", str(tmp_path / "r")]) == 4
    assert "nope.onnx" in capsys.readouterr().err
    # a bad option is a usage error (2), not a model error
    assert cli(["scan", str(model), str(tmp_path / "p.jpg"), "--out", str(tmp_path / "r"), "--fail-on", "bogus"]) == 2
    assert "--fail-on bogus: choose from suspect, inconclusive, error" in capsys.readouterr().err
    # a run folder of another model is refused (exit 2, nothing of it rewritten), not mixed into one report
    run = tmp_path / "other"
    run.mkdir()
    line = json.dumps({"sha256": "0" * 64, "model_sha256": "f" * 64, "path": "x.jpg", "stamp": [1, 1],
                       "verdict": "GENUINE"}) + "\n"
    (run / "results.jsonl").write_text(line)
    assert cli(["scan", str(model), str(tmp_path / "p.jpg"), "--out", str(run)]) == 2
    assert "another model" in capsys.readouterr().err and (run / "results.jsonl").read_text() == line
