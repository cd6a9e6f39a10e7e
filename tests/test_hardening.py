"""Bad input never crashes or hangs a command: a corpus of damaged archives, odd files, odd names, bad model
metadata and bad command lines, each with the clean error it must give (issue 12). A whole-photo tiny model
keeps each case to a fraction of a second; the comparator path reads photos through the same functions."""
from __future__ import annotations

import csv
import io
import json
import os
import shutil
import subprocess
import sys
import zipfile

import numpy as np
import onnx
import pytest
from PIL import Image

from genuine.cli import main as cli
from genuine.infer.photo import PhotoError, load_photo, read_bytes
from genuine.infer.runtime import META_KEY, ModelError, OnnxModel
from genuine.infer.scan import Journal, lock_run
from genuine.infer.sources import entries, read


@pytest.fixture(scope="module")
def model(tiny_model):
    return tiny_model / "model.onnx"


def _jpeg(seed: int, w=96, h=72, **kw) -> bytes:
    rng = np.random.default_rng(seed)
    a = np.asarray(Image.fromarray(rng.integers(0, 255, (h // 8 + 1, w // 8 + 1, 3), dtype=np.uint8)).resize((w, h)))
    buf = io.BytesIO()
    Image.fromarray(a).save(buf, "JPEG", quality=90, **kw)
    return buf.getvalue()


def _records(run) -> list[dict]:
    return Journal(run / "results.jsonl").close_and_records()


def _bad_zip(path, good: bytes) -> dict[str, str]:
    """An archive with one good photo and the damaged entries found in the field; returns name -> what it is."""
    names = {"good.jpg": "fine", "crc.jpg": "CRC mismatch", "deflate.jpg": "corrupt deflate data",
             "header.jpg": "local header names another file", "dup.jpg": "two members share a name"}
    with zipfile.ZipFile(path, "w") as zf:
        zf.writestr("good.jpg", good)
        zf.writestr("crc.jpg", _jpeg(1), compress_type=zipfile.ZIP_STORED)
        zf.writestr("deflate.jpg", _jpeg(2), compress_type=zipfile.ZIP_DEFLATED)
        zf.writestr("header.jpg", _jpeg(3), compress_type=zipfile.ZIP_STORED)
        zf.writestr("dup.jpg", _jpeg(4))
        with pytest.warns(UserWarning, match="Duplicate name"):
            zf.writestr("dup.jpg", _jpeg(5))
    raw = bytearray(path.read_bytes())
    with zipfile.ZipFile(path) as zf:
        info = {i.filename: i for i in zf.infolist()}
    for name, damage in (("crc.jpg", "crc"), ("deflate.jpg", "deflate"), ("header.jpg", "header")):
        off = info[name].header_offset
        data = off + 30 + len(name)
        if damage == "crc":
            raw[data + 100] ^= 0xFF                      # stored: one byte flipped, the CRC no longer matches
        elif damage == "deflate":
            raw[data:data + 8] = b"\xff" * 8             # not a valid deflate stream
        else:
            raw[off + 30:off + 30 + len(name)] = b"HEADER.jpg"[:len(name)].ljust(len(name), b"_")
    path.write_bytes(bytes(raw))
    return names


def test_damaged_archive_entries_are_bad_items_and_the_scan_goes_on(model, tmp_path):
    names = _bad_zip(tmp_path / "case.zip", _jpeg(0))
    run = tmp_path / "run"
    for attempt in range(2):   # the rerun must not crash at the same entry, nor add records
        assert cli(["scan", str(model), str(tmp_path / "case.zip"), "--out", str(run), "--workers", "1"]) == 0
        recs = _records(run)
        assert len(recs) == 6, [r["path"] for r in recs]
    by = {r["path"].split("!")[1]: r for r in recs}
    assert by["good.jpg"]["type"] == "photo"
    for n in ("crc.jpg", "deflate.jpg", "header.jpg"):
        assert by[n]["type"] == "error" and "damaged archive entry" in by[n]["error"], (n, by[n])
    # two members with one name: both read, each its own item with its own hash
    assert by["dup.jpg"]["type"] == "photo" and by["dup.jpg (entry 2)"]["type"] == "photo"
    assert by["dup.jpg"]["sha256"] != by["dup.jpg (entry 2)"]["sha256"]
    rows = list(csv.DictReader(open(run / "results.csv", encoding="utf-8")))
    assert len(rows) == len(names) + 1


def test_reads_are_capped_on_the_bytes_actually_read(tmp_path, monkeypatch):
    import genuine.infer.sources as sources

    bomb = tmp_path / "bomb.zip"
    with zipfile.ZipFile(bomb, "w", zipfile.ZIP_DEFLATED) as zf:
        zf.writestr("bomb.jpg", b"\0" * (3 << 20))
        zf.writestr("honest.jpg", b"\0" * (3 << 20))
    raw = bytearray(bomb.read_bytes())
    for off in (raw.find(b"PK\x03\x04") + 22, raw.find(b"PK\x01\x02") + 24):   # bomb.jpg declares 1 KB
        raw[off:off + 4] = (1024).to_bytes(4, "little")
    bomb.write_bytes(bytes(raw))
    monkeypatch.setattr(sources, "MAX_FILE_BYTES", 1 << 20)
    e, honest = list(entries([str(bomb)]))
    assert e.size == 1024 and e.refused is None
    with pytest.raises(PhotoError) as err:   # never inflated past what it declared: a bad item, not 3 MB of RAM
        read(e)
    assert err.value.kind == "unreadable" and "damaged archive entry" in err.value.reason
    assert honest.refused == "archive entry of 3 MB refused (over 1 MB)"
    big = tmp_path / "big.jpg"
    big.write_bytes(b"\xff\xd8" + b"\0" * (2 << 20))
    with pytest.raises(PhotoError, match="larger than 1 MB") as err:
        read_bytes(big, limit=1 << 20)
    assert err.value.kind == "too_large"


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="FIFOs are POSIX")
def test_pipes_and_devices_are_refused_not_read(model, tmp_path, capsys):
    os.mkfifo(tmp_path / "pipe.jpg")               # opening it for reading would block for ever
    os.symlink("/dev/zero", tmp_path / "zero.jpg")  # reading it would never end
    for name in ("pipe.jpg", "zero.jpg"):
        with pytest.raises(PhotoError, match="not a regular file") as err:
            load_photo(tmp_path / name)
        assert err.value.source.endswith(name)
    assert cli(["inspect", str(model), str(tmp_path / "pipe.jpg")]) == 3
    assert "not a regular file" in capsys.readouterr().err
    (tmp_path / "ok.jpg").write_bytes(_jpeg(7))
    assert cli(["scan", str(model), str(tmp_path), "--out", str(tmp_path / "run"), "--workers", "1"]) == 0
    by = {os.path.basename(r["path"]): r for r in _records(tmp_path / "run")}
    assert by["ok.jpg"]["type"] == "photo"
    assert by["pipe.jpg"]["type"] == by["zero.jpg"]["type"] == "error"


def test_truncated_or_grey_filled_jpegs_are_refused(tmp_path):
    good = _jpeg(3, 320, 240)
    sos = good.find(b"\xff\xda")
    planted = good[:sos + (len(good) - sos) // 2] + b"\xff\xd9" + good[sos + (len(good) - sos) // 2:]
    with pytest.raises(PhotoError, match="filled the last") as err:
        load_photo(planted)
    assert err.value.kind == "truncated"
    # a header that promises 2400 rows over the data of 16
    small = bytearray(_jpeg(4, 16, 16))
    sof = small.find(b"\xff\xc0")
    small[sof + 5:sof + 9] = (2400).to_bytes(2, "big") + (1600).to_bytes(2, "big")
    with pytest.raises(PhotoError) as err:
        load_photo(bytes(small))
    assert err.value.kind == "truncated"
    assert load_photo(good).size == (320, 240)
    flat = io.BytesIO()
    Image.new("RGB", (64, 48), (128, 128, 128)).save(flat, "JPEG")
    assert load_photo(flat.getvalue()).size == (64, 48)   # grey all over is a (useless) photo, not a truncation


def test_a_damaged_png_header_is_named_as_such():
    buf = io.BytesIO()
    Image.new("RGB", (32, 32), (10, 200, 30)).save(buf, "PNG")
    raw = bytearray(buf.getvalue())
    raw[29] ^= 0xFF                                    # inside IHDR's CRC
    with pytest.raises(PhotoError, match="damaged PNG file"):
        load_photo(bytes(raw))
    with pytest.raises(PhotoError, match="not a photo in a supported format"):
        load_photo(b"hello, world")


def test_names_that_are_not_utf8_are_kept_escaped_everywhere(model, tmp_path, capsys):
    folder = os.fsencode(tmp_path / "src")
    os.mkdir(folder)
    raw = os.path.join(folder, b"caf\xe9-\xff.jpg")
    with open(raw, "wb") as fh:
        fh.write(_jpeg(9))
    path = os.fsdecode(raw)
    assert cli(["inspect", str(model), path]) in (0, 1, 2)
    out = capsys.readouterr().out
    assert "caf\\xe9-\\xff.jpg" in out
    out.encode("utf-8")                                 # a strict UTF-8 stdout takes it
    run = tmp_path / "run"
    assert cli(["scan", str(model), str(tmp_path / "src"), "--out", str(run), "--workers", "1"]) == 0
    text = (run / "results.csv").read_text(encoding="utf-8")
    assert "caf\\xe9-\\xff.jpg" in text
    assert cli(["scan", str(model), str(tmp_path / "src"), "--out", str(run), "--workers", "1"]) == 0
    assert len(_records(run)) == 1                      # the escaped name is its key: a rerun adds nothing


def test_a_folder_passed_as_a_photo_is_a_photo_error_and_the_batch_goes_on(model, tmp_path, capsys):
    (tmp_path / "album.jpg").mkdir()                   # a folder named like a photo (Linux opens it read-only)
    (tmp_path / "ok.jpg").write_bytes(_jpeg(11))
    folder, ok = str(tmp_path / "album.jpg"), str(tmp_path / "ok.jpg")
    assert cli(["inspect", str(model), folder, ok]) == 3
    out, err = capsys.readouterr()
    assert f"{folder}: ERROR is a folder, not a photo" in err.splitlines()
    assert out.startswith(f"{ok}: ")                   # the next photo still gets its verdict
    assert cli(["inspect", str(model), folder, ok, "--json"]) == 3
    first, second = (json.loads(line) for line in capsys.readouterr().out.splitlines())
    assert (first["source"], first["error_kind"], first["error"]) == (folder, "not_image", "is a folder, not a photo")
    assert second["source"] == ok and second["verdict"]


def _strict_utf8_cli(*argv) -> subprocess.CompletedProcess:
    """`genuine ARGV` in a child whose stdout takes UTF-8 only (PYTHONIOENCODING=utf-8:strict): a file name that
    is not UTF-8 on disk must be printed escaped, never crash the print."""
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    return subprocess.run([sys.executable, "-m", "genuine", *argv], env=env, capture_output=True, timeout=300)


def test_names_that_are_not_utf8_print_on_a_strict_utf8_stdout(model, tiny_synth, tmp_path):
    src = os.fsencode(tmp_path)
    photo = os.path.join(src, b"IMG-\xff.jpg")
    shutil.copyfile(next(tiny_synth.glob("*/counterfeit/*.jpg")), photo)
    maps = os.path.join(src, b"maps-\xff")
    os.mkdir(maps)
    # Planted: every photo SUSPECT and its product taken as named, so the heatmap (and its line) is always there.
    meta = OnnxModel(model).meta
    suspect = _meta_variant(model, tmp_path / "suspect.onnx", {
        **meta, "product_min_confidence": 0.0, "product_margin": 0.0,
        "thresholds": {**meta["thresholds"], "threshold_genuine": -1.0, "threshold_suspect": 0.0,
                       "validation": {"validated": True, "why": None}}})
    r = _strict_utf8_cli(b"inspect", os.fsencode(suspect), photo, b"--heatmap", os.path.join(maps, b"h.png"))
    out = r.stdout.decode("utf-8")                     # strict: what was printed is valid UTF-8
    assert r.returncode == 1, r.stderr.decode("utf-8", "replace")
    assert out.startswith(f"{tmp_path}/IMG-\\xff.jpg: "), out
    assert f"heatmap: {tmp_path}/maps-\\xff/h.png" in out
    assert os.path.exists(os.path.join(maps, b"h.png"))


def _meta_variant(src, dst, meta) -> str:
    m = onnx.load(str(src))
    for p in m.metadata_props:
        if p.key == META_KEY:
            p.value = json.dumps(meta)
    onnx.save(m, str(dst))
    return str(dst)


@pytest.mark.parametrize("change", ["list", "no_input", "no_thresholds", "size_text", "products_text",
                                    "quality_text"])
def test_model_metadata_of_the_wrong_shape_is_a_model_error(model, tmp_path, change, capsys):
    meta = OnnxModel(model).meta
    variants = {"list": [meta], "no_input": {k: v for k, v in meta.items() if k != "input"},
                "no_thresholds": {k: v for k, v in meta.items() if k != "thresholds"},
                "size_text": {**meta, "input": {**meta["input"], "size": "abc"}},
                "products_text": {**meta, "products": "abc"},
                "quality_text": {**meta, "quality": {"min_brightness": "dark"}}}
    bad = _meta_variant(model, tmp_path / f"{change}.onnx", variants[change])
    with pytest.raises(ModelError, match=f"{change}.onnx"):
        OnnxModel(bad)
    (tmp_path / "p.jpg").write_bytes(_jpeg(1))
    assert cli(["inspect", bad, str(tmp_path / "p.jpg")]) == 4
    assert cli(["scan", bad, str(tmp_path / "p.jpg"), "--out", str(tmp_path / "run")]) == 4
    assert "genuine metadata" in capsys.readouterr().err or change == "list"


def test_command_line_mistakes_are_usage_errors(model, tmp_path, capsys):
    (tmp_path / "p.jpg").write_bytes(_jpeg(2))
    photo = str(tmp_path / "p.jpg")
    assert cli(["inspect", str(model), photo, "--heatmap", str(tmp_path / "no" / "such" / "h.png")]) == 2
    assert "does not exist" in capsys.readouterr().err
    (tmp_path / "file").write_text("x")
    assert cli(["scan", str(model), photo, "--out", str(tmp_path / "file")]) == 2
    assert "is a file" in capsys.readouterr().err
    assert cli(["scan", str(model), f"@{tmp_path / 'missing.txt'}", "--out", str(tmp_path / "r")]) == 2
    assert "missing.txt" in capsys.readouterr().err
    (tmp_path / "list.txt").write_bytes(b"caf\xe9.jpg\n")
    assert cli(["scan", str(model), f"@{tmp_path / 'list.txt'}", "--out", str(tmp_path / "r")]) == 2
    assert "not UTF-8" in capsys.readouterr().err
    for argv in (["scan", str(model), photo, "--out", str(tmp_path / "r"), "--workers", "-1"],
                 ["inspect", str(model), photo, "--threads", "x"]):
        with pytest.raises(SystemExit) as e:
            cli(argv)
        assert e.value.code == 2
    assert not (tmp_path / "r").exists()               # nothing started


def test_garbage_journal_lines_are_skipped_and_their_photos_rescored(model, tmp_path, capsys):
    src = tmp_path / "src"
    src.mkdir()
    for i in range(4):
        (src / f"p{i}.jpg").write_bytes(_jpeg(20 + i))
    run = tmp_path / "run"
    assert cli(["scan", str(model), str(src), "--out", str(run), "--workers", "1"]) == 0
    lines = (run / "results.jsonl").read_bytes().splitlines(keepends=True)
    lines[1] = b'{"path": 3, "oops\n'                  # a damaged record inside the file, not a torn last line
    lines.insert(2, b"\xff\xfe not json\n")
    (run / "results.jsonl").write_bytes(b"".join(lines))
    assert cli(["scan", str(model), str(src), "--out", str(run), "--workers", "1"]) == 0
    assert "2 damaged line(s)" in capsys.readouterr().err
    rows = list(csv.DictReader(open(run / "results.csv", encoding="utf-8")))
    assert sorted(os.path.basename(r["path"]) for r in rows) == [f"p{i}.jpg" for i in range(4)]


def test_a_path_given_three_times_is_one_item(model, tmp_path):
    (tmp_path / "p.jpg").write_bytes(_jpeg(30))
    p = str(tmp_path / "p.jpg")
    run = tmp_path / "run"
    assert cli(["scan", str(model), p, p, p, "--out", str(run), "--workers", "1"]) == 0
    summary = json.loads((run / "summary.json").read_text())
    assert summary["total_photos"] == 1 and len(_records(run)) == 1


def test_a_second_scan_into_a_busy_run_folder_is_refused(model, tmp_path, capsys):
    (tmp_path / "p.jpg").write_bytes(_jpeg(31))
    run = tmp_path / "run"
    run.mkdir()
    with lock_run(run):
        assert cli(["scan", str(model), str(tmp_path / "p.jpg"), "--out", str(run)]) == 2
        assert "in use by another genuine scan" in capsys.readouterr().err
        assert not (run / "results.jsonl").exists()
    assert cli(["scan", str(model), str(tmp_path / "p.jpg"), "--out", str(run), "--workers", "1"]) == 0


def test_references_add_records_damaged_entries_and_adds_the_rest(model, tmp_path, capsys):
    _bad_zip(tmp_path / "refs.zip", _jpeg(0))
    db = str(tmp_path / "refs.db")
    assert cli(["references", "add", str(model), str(tmp_path / "refs.zip"), "--db", db, "--product", "p"]) == 3
    err = capsys.readouterr()
    text = err.out + err.err
    for n in ("crc.jpg", "deflate.jpg", "header.jpg"):
        assert f"refs.zip!{n}: damaged archive entry" in text
    assert "p (genuine): 3 added, 0 already present, 3 unreadable" in text   # good.jpg and both dup.jpg members


def test_a_photo_too_big_for_a_3gb_handheld_is_an_error_and_the_batch_goes_on(tiny_synth, tmp_path):
    """Under a 3 GB address-space limit (a handheld), a 196 MP JPEG (under the 200 MP limit) decodes but its
    full-resolution working copies do not fit: rectify reports it as an error naming the file, and goes on."""
    import resource

    big = tmp_path / "big.jpg"
    Image.new("RGB", (14000, 14000), (200, 180, 160)).save(big, quality=50)
    synth = tiny_synth
    product = sorted(p for p in synth.iterdir() if (p / "template.png").exists())[0]
    ok = sorted((product / "genuine").glob("*.jpg"))[0]

    def limit():
        resource.setrlimit(resource.RLIMIT_AS, (3 << 30, 3 << 30))

    run = subprocess.run([sys.executable, "-m", "genuine", "rectify", str(big), str(ok), "--templates", str(synth),
                          "--json"], capture_output=True, timeout=300, preexec_fn=limit)
    rows = [json.loads(line) for line in run.stdout.decode().splitlines()]
    assert run.returncode != 0 and b"Traceback" not in run.stderr
    assert rows[0]["path"] == str(big) and rows[0]["error_kind"] == "too_large" and "memory" in rows[0]["error"]
    assert rows[1]["ok"] and rows[1]["product"] == product.name
