"""`genuine data check`: bad files, duplicates, leakage, layouts and the CLI, on tiny real JPEGs."""
import csv
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

from genuine.cli import main as cli
from genuine.train.check import check_dataset, near_pairs

SPLITS = ["train", "val", "test"]


def base_image(seed, size=(160, 120)):
    # Upscaled 12x12 random colour fields: distinct seeds are >= 16 bits apart in phash, while
    # re-encoding or brightening one moves it <= 2 bits (measured over 200 seeds).
    rng = np.random.default_rng(seed)
    return Image.fromarray(rng.integers(0, 256, (12, 12, 3), dtype=np.uint8)).resize(size, Image.BICUBIC)


def save(path, seed, quality=90, brighten=0):
    path.parent.mkdir(parents=True, exist_ok=True)
    a = np.asarray(base_image(seed), dtype=np.int16) + brighten
    Image.fromarray(np.clip(a, 0, 255).astype(np.uint8)).save(path, "JPEG", quality=quality)
    return path


def write_manifest(root, rows):
    with open(root / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=["path", "item_id", "split"])
        w.writeheader()
        w.writerows(rows)


def make_dataset(root, products=("bottle", "watch"), items=3, photos=2):
    """products x labels x items, one split per item; an item's photos are near duplicates of each other."""
    rows, seed = [], 0
    for product in products:
        for label in ("genuine", "counterfeit"):
            for item in range(items):
                seed += 1
                for k in range(photos):
                    rel = f"{product}/{label}/{product}_{label}_{item}_{k}.jpg"
                    save(root / rel, seed, quality=95 - 20 * k, brighten=8 * k)
                    rows.append({"path": rel, "item_id": f"{label}{item}", "split": SPLITS[item % 3]})
    write_manifest(root, rows)
    return rows


def bad_kinds(report):
    return {b["path"]: b["kind"] for b in report["bad_files"]}


def test_clean_dataset_passes(tmp_path):
    make_dataset(tmp_path)
    r = check_dataset(tmp_path, workers=1)
    assert r["ok"] and not r["leakage"] and r["bad_files"] == []
    assert r["photos"] == 24 and r["products"] == ["bottle", "watch"]
    assert r["splits"] == {"train": 8, "val": 8, "test": 8}
    assert r["near_duplicates"] == {"across_splits": [], "within_split": []}
    assert r["exact_duplicates"] == {"across_splits": [], "within_split": []}


def test_photos_of_one_item_are_not_near_duplicates_but_would_be_without_item_ids(tmp_path):
    rows = make_dataset(tmp_path, products=("bottle",), items=1)
    assert check_dataset(tmp_path, workers=1)["near_duplicates"]["within_split"] == []
    write_manifest(tmp_path, [{**row, "item_id": ""} for row in rows])
    near = check_dataset(tmp_path, workers=1)["near_duplicates"]["within_split"]
    assert len(near) == 2  # genuine pair and counterfeit pair: the photos really are alike


def test_truncated_empty_and_fake_files_are_bad(tmp_path):
    make_dataset(tmp_path)
    d = tmp_path / "bottle" / "genuine"
    data = save(d / "whole.jpg", 100).read_bytes()
    (d / "whole.jpg").unlink()
    (d / "cut.jpg").write_bytes(data[: len(data) // 2])
    (d / "empty.jpg").write_bytes(b"")
    (d / "notes.jpg").write_text("not a photo at all\n")
    (d / "readme.txt").write_text("hello\n")
    r = check_dataset(tmp_path, workers=1)
    kinds = bad_kinds(r)
    assert kinds["bottle/genuine/cut.jpg"] == "truncated"
    assert kinds["bottle/genuine/empty.jpg"] == "empty"
    assert "bottle/genuine/notes.jpg" in kinds
    assert kinds["bottle/genuine/readme.txt"] == "not_image"
    reasons = {b["path"]: b["reason"] for b in r["bad_files"]}
    assert reasons["bottle/genuine/readme.txt"] == "not a photo file (suffix .txt)"
    assert not r["ok"] and not r["leakage"]
    assert cli(["data", "check", str(tmp_path), "--workers", "1"]) == 1


def test_text_named_jpg_is_not_image_and_png_loads(tmp_path):
    make_dataset(tmp_path, products=("bottle",), items=1)
    (tmp_path / "bottle" / "genuine" / "notes.jpg").write_text("not a photo at all\n")
    base_image(500).save(tmp_path / "bottle" / "genuine" / "scan.png")
    kinds = bad_kinds(check_dataset(tmp_path, workers=1))
    assert kinds == {"bottle/genuine/notes.jpg": "not_image"}


def test_missing_manifest_file_is_bad(tmp_path):
    rows = make_dataset(tmp_path, products=("bottle",), items=1)
    write_manifest(tmp_path, rows + [{"path": "bottle/genuine/gone.jpg", "item_id": "x", "split": "train"}])
    r = check_dataset(tmp_path, workers=1)
    assert bad_kinds(r) == {"bottle/genuine/gone.jpg": "missing"} and not r["ok"]


def test_exact_duplicate_across_splits(tmp_path):
    rows = make_dataset(tmp_path)
    shutil.copy(tmp_path / rows[0]["path"], tmp_path / "bottle/genuine/copy.jpg")
    write_manifest(tmp_path, rows + [{"path": "bottle/genuine/copy.jpg", "item_id": "other", "split": "test"}])
    r = check_dataset(tmp_path, workers=1)
    [group] = r["exact_duplicates"]["across_splits"]
    assert sorted(group["paths"]) == sorted([rows[0]["path"], "bottle/genuine/copy.jpg"])
    near = [sorted(g["paths"]) for g in r["near_duplicates"]["across_splits"]]
    assert sorted(group["paths"]) not in near and r["leakage"]  # an exact pair is not listed as near too
    assert cli(["data", "check", str(tmp_path), "--workers", "1"]) == 1


@pytest.mark.parametrize("quality,brighten", [(40, 0), (90, 20)])
def test_near_duplicate_across_splits_is_a_warning(tmp_path, capsys, quality, brighten):
    """Look-alike items are normal (two banknotes of one series): the pair is named to look at, exit stays 0."""
    rows = make_dataset(tmp_path)
    save(tmp_path / "watch/genuine/again.jpg", 1, quality=quality, brighten=brighten)  # seed 1 = first item
    write_manifest(tmp_path, rows + [{"path": "watch/genuine/again.jpg", "item_id": "new", "split": "test"}])
    r = check_dataset(tmp_path, workers=1)
    across = r["near_duplicates"]["across_splits"]
    assert {tuple(sorted(g["paths"])) for g in across} == {
        ("bottle/genuine/bottle_genuine_0_0.jpg", "watch/genuine/again.jpg"),
        ("bottle/genuine/bottle_genuine_0_1.jpg", "watch/genuine/again.jpg")}
    assert all(g["distance"] <= 4 for g in across)
    assert all(sorted(g["splits"]) == ["test", "train"] for g in across)
    assert r["ok"] and not r["leakage"]
    assert any(w.startswith("2 near-duplicate pairs across splits (warning: look at them;") for w in r["warnings"])
    assert cli(["data", "check", str(tmp_path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "Near duplicates across splits (warning" in out and "Near duplicates across splits (leakage)" not in out
    for g in across:  # each pair is printed with both paths, their splits and the hash distance
        a, b = g["paths"]
        sa, sb = g["splits"]
        assert f"  {a} [{sa}], {b} [{sb}] (distance {g['distance']})" in out.splitlines()
    assert out.strip().splitlines()[-1] == (
        "OK: 25 photos, 2 products, splits train/val/test = 8/8/9; no leakage, no unreadable files; "
        "warning: 2 near-duplicate pairs across splits to look at")


def test_exact_and_near_duplicates_across_splits_fail_on_the_exact_one(tmp_path, capsys):
    """A train photo copied into test is leakage (exit 1); its likeness to the item's other photo is a warning."""
    rows = make_dataset(tmp_path)
    shutil.copy(tmp_path / rows[0]["path"], tmp_path / "bottle/genuine/copy.jpg")
    write_manifest(tmp_path, rows + [{"path": "bottle/genuine/copy.jpg", "item_id": "other", "split": "test"}])
    r = check_dataset(tmp_path, workers=1)
    assert r["exact_duplicates"]["across_splits"][0]["splits"] == ["train", "test"]
    [near] = r["near_duplicates"]["across_splits"]
    assert near["paths"] == [rows[1]["path"], "bottle/genuine/copy.jpg"] and r["leakage"] and not r["ok"]
    assert cli(["data", "check", str(tmp_path), "--workers", "1"]) == 1
    out = capsys.readouterr().out
    assert "Exact duplicates across splits (leakage) (1):" in out
    assert out.strip().splitlines()[-1] == (
        "FAIL: 25 photos, 2 products; 1 exact duplicate across splits; "
        "warning: 1 near-duplicate pair across splits to look at")


def test_item_straddling_splits_and_item_with_both_labels(tmp_path):
    rows = make_dataset(tmp_path)
    rows[1]["split"] = "val"  # second photo of a train item
    rows[2]["item_id"] = "shared"  # a counterfeit item id also used under genuine
    rows[8]["item_id"] = "shared"
    rows[8]["split"] = rows[2]["split"]
    write_manifest(tmp_path, rows)
    r = check_dataset(tmp_path, workers=1)
    [straddle] = r["items_straddling_splits"]
    assert straddle["item_id"] == rows[0]["item_id"] and straddle["splits"] == ["train", "val"]
    [both] = r["items_with_both_labels"]
    assert both["item_id"] == "shared" and r["leakage"]


def test_synonyms_single_product_and_no_splits(tmp_path, capsys):
    root = tmp_path / "sneaker"
    for k in range(3):
        save(root / "real" / f"r{k}.jpg", k)
        save(root / "fake" / f"f{k}.jpg", 10 + k)
    save(root / "fake" / "f3.jpg", 13)
    r = check_dataset(root, workers=1)
    assert r["layout"] == "single" and r["products"] == ["sneaker"] and r["ok"] and not r["has_splits"]
    counts = {(c["label"], c["split"], c["photos"]) for c in r["counts"]}
    assert counts == {("genuine", "-", 3), ("counterfeit", "-", 4)}
    assert cli(["data", "check", str(root), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert f"genuine data split {root}" in out
    assert out.strip().splitlines()[-1] == "OK: 7 photos, 1 product, no splits yet; no leakage, no unreadable files"


def test_products_layout_with_synonyms_and_imbalance(tmp_path):
    for k in range(4):
        save(tmp_path / "bag" / "authentic" / f"a{k}.jpg", k)
    save(tmp_path / "bag" / "replica" / "b0.jpg", 10)
    save(tmp_path / "belt" / "genuine" / "c0.jpg", 20)
    r = check_dataset(tmp_path, workers=1)
    assert r["layout"] == "products" and r["products"] == ["bag", "belt"] and r["ok"]
    assert {i["product"]: i["note"] for i in r["imbalance"]} == {"bag": "minority/majority = 0.25",
                                                                  "belt": "no counterfeit photos"}


def test_layout_error_exits_2(tmp_path, capsys):
    (tmp_path / "holiday").mkdir()
    assert cli(["data", "check", str(tmp_path)]) == 2
    assert "expected ROOT/<product>/<genuine|counterfeit>/" in capsys.readouterr().err
    assert cli(["data", "check", str(tmp_path / "nope")]) == 2


def test_cli_summary_max_list_and_json(tmp_path, capsys):
    rows = make_dataset(tmp_path)
    assert cli(["data", "check", str(tmp_path), "--workers", "1"]) == 0
    assert capsys.readouterr().out.strip().splitlines()[-1] == (
        "OK: 24 photos, 2 products, splits train/val/test = 8/8/8; no leakage, no unreadable files")
    for k in range(3):
        (tmp_path / f"bottle/genuine/empty{k}.jpg").write_bytes(b"")
    rows[1]["split"] = "test"
    write_manifest(tmp_path, rows)
    report = tmp_path / "report.json"
    assert cli(["data", "check", str(tmp_path), "--workers", "1", "--max-list", "2", "--json", str(report)]) == 1
    out = capsys.readouterr().out
    assert "  ... and 1 more" in out
    assert out.strip().splitlines()[-2:] == [
        "FAIL: 27 photos, 2 products; 3 unreadable, 1 item straddling splits", f"Report saved to {report}"]
    saved = json.loads(report.read_text())
    assert {b["path"] for b in saved["bad_files"]} == {f"bottle/genuine/empty{k}.jpg" for k in range(3)}
    assert saved["items_straddling_splits"][0]["paths"] == [rows[0]["path"], rows[1]["path"]]


def test_parallel_workers_match_sequential(tmp_path):
    make_dataset(tmp_path, items=5)
    (tmp_path / "bottle/genuine/empty.jpg").write_bytes(b"")
    assert check_dataset(tmp_path, workers=2) == check_dataset(tmp_path, workers=1)


def test_near_pairs_matches_brute_force():
    rng = np.random.default_rng(0)
    h = rng.integers(0, 2**63, 500, dtype=np.uint64) * np.uint64(2)
    h[10], h[20], h[30] = h[5] ^ np.uint64(1 << 63), h[5] ^ np.uint64(0b1111), h[7]
    i, j, d = near_pairs(h, 4)
    ref = [(a, b, bin(int(h[a]) ^ int(h[b])).count("1")) for a in range(500) for b in range(a + 1, 500)]
    assert list(zip(i.tolist(), j.tolist(), d.tolist())) == [x for x in ref if x[2] <= 4]
    assert len(near_pairs([], 4)[0]) == 0


def test_empty_label_folders_fail(tmp_path, capsys):
    (tmp_path / "genuine").mkdir()
    (tmp_path / "counterfeit").mkdir()
    assert not check_dataset(tmp_path, workers=1)["ok"]
    assert cli(["data", "check", str(tmp_path), "--workers", "1"]) == 1
    assert capsys.readouterr().out.strip().splitlines()[-1] == "FAIL: no photos found under the label folders"


def test_declared_twins_are_not_near_duplicates_but_other_look_alikes_are(tmp_path, capsys):
    """A counterfeit and its genuine twin (SynthPack --twins: defect_detail "twin of ITEM"; or a twin_of column)
    are alike by design: counted, not listed. Other look-alikes, and twins split apart, are still named."""
    rows = []

    def add(rel, seed, item, split, brighten=0, **extra):
        save(tmp_path / rel, seed, brighten=brighten)
        rows.append({"path": rel, "item_id": item, "split": split, "defect_detail": "", "twin_of": "", **extra})

    add("bottle/counterfeit/c0.jpg", 1, "c0", "train")
    add("bottle/genuine/c0t.jpg", 1, "c0t", "train", brighten=8, defect_detail="twin of c0")   # SynthPack's way
    add("bottle/counterfeit/c3.jpg", 3, "c3", "train")
    add("bottle/genuine/c3-twin.jpg", 3, "c3-twin", "train", brighten=8, twin_of="c3")        # a manifest column
    add("bottle/genuine/g1.jpg", 5, "g1", "train")
    add("bottle/genuine/g2.jpg", 5, "g2", "train", brighten=8)                                # not declared
    add("bottle/counterfeit/c4.jpg", 7, "c4", "train")
    add("bottle/genuine/c4t.jpg", 7, "c4t", "test", brighten=8, twin_of="c4")                 # twins split apart
    with open(tmp_path / "manifest.csv", "w", newline="") as fh:
        w = csv.DictWriter(fh, fieldnames=list(rows[0]))
        w.writeheader()
        w.writerows(rows)
    r = check_dataset(tmp_path, workers=1)
    assert r["near_duplicate_twin_pairs"] == 2
    assert [g["paths"] for g in r["near_duplicates"]["within_split"]] == [["bottle/genuine/g1.jpg",
                                                                           "bottle/genuine/g2.jpg"]]
    assert [g["paths"] for g in r["near_duplicates"]["across_splits"]] == [["bottle/counterfeit/c4.jpg",
                                                                            "bottle/genuine/c4t.jpg"]]
    assert cli(["data", "check", str(tmp_path), "--workers", "1"]) == 0
    out = capsys.readouterr().out
    assert "c0t.jpg" not in out and "c3-twin.jpg" not in out
    assert "  bottle/genuine/g1.jpg [train], bottle/genuine/g2.jpg [train] (distance 0)" in out.splitlines()
    assert "2 near-duplicate pairs of an item and its declared twin (alike by design) not listed" in out


def test_many_near_duplicates_print_the_first_ten_and_a_count(tmp_path, capsys):
    rows = make_dataset(tmp_path, products=("bottle",), items=6)
    write_manifest(tmp_path, [{**row, "item_id": ""} for row in rows])   # 12 items' photo pairs, none declared
    report = tmp_path / "report.json"
    assert cli(["data", "check", str(tmp_path), "--workers", "1", "--json", str(report)]) == 0
    out = capsys.readouterr().out.splitlines()
    start = out.index("Near duplicates within a split (informational) (12):")
    assert all(line.endswith(")") and " [" in line for line in out[start + 1:start + 11])
    assert out[start + 11] == "  ... and 2 more (--max-list N shows more; --json FILE has them all)"
    assert len(json.loads(report.read_text())["near_duplicates"]["within_split"]) == 12


def test_names_that_are_not_utf8_print_on_a_strict_utf8_stdout(tmp_path):
    """File and folder names need not be UTF-8 on disk; the report prints them escaped, so a strict UTF-8 stdout
    takes it (before: a UnicodeEncodeError half-way through the report)."""
    root = os.path.join(os.fsencode(tmp_path), b"set-\xff")
    make_dataset(Path(os.fsdecode(root)))
    # near item 1's photos; not in manifest.csv (UTF-8 text), so also named in the "not in manifest" warning
    save(Path(os.fsdecode(os.path.join(root, b"watch/genuine/again-\xff.jpg"))), 1, quality=40)
    env = {**os.environ, "PYTHONIOENCODING": "utf-8:strict"}
    r = subprocess.run([sys.executable, "-m", "genuine", "data", "check", root, "--workers", "1"], env=env,
                       capture_output=True, timeout=300)
    out = r.stdout.decode("utf-8")                    # strict: what was printed is valid UTF-8
    assert r.returncode == 0, r.stderr.decode("utf-8", "replace")
    assert out.startswith(f"{tmp_path}/set-\\xff (products layout, manifest.csv)")
    assert "watch/genuine/again-\\xff.jpg [-]" in out and "(first: watch/genuine/again-\\xff.jpg)" in out
    assert out.strip().splitlines()[-1].startswith("OK: 25 photos")
